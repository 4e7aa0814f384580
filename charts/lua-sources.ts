import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Where our Lua modules live in the repository (module `edge.x` is `lua/edge/x.lua`). */
export const LUA_ROOT = path.join(__dirname, '..', 'lua');

/** Our Lua modules, by module path relative to the Lua root (e.g. "edge/setup.lua"), sorted. */
export function readLuaModules(root: string = LUA_ROOT): Record<string, string> {
  const modules: Record<string, string> = {};
  for (const file of readdirSync(path.join(root, 'edge')).filter((f) => f.endsWith('.lua')).sort()) {
    modules[`edge/${file}`] = readFileSync(path.join(root, 'edge', file), 'utf8');
  }
  return modules;
}
