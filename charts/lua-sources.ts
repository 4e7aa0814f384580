import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Where our Lua modules live in the repository (module `edge.x.y` is `lua/edge/x/y.lua`). */
export const LUA_ROOT = path.join(__dirname, '..', 'lua');

/** Our Lua files, by path relative to the Lua root (e.g. "edge/serve/cert_cache.lua"), sorted. */
export function readLuaModules(root: string = LUA_ROOT): Record<string, string> {
  const files = readdirSync(path.join(root, 'edge'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.lua'))
    .map((f) => `edge/${f.split(path.sep).join('/')}`)
    .sort();
  return Object.fromEntries(files.map((f) => [f, readFileSync(path.join(root, f), 'utf8')]));
}
