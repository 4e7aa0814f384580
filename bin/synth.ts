#!/usr/bin/env node
// npm run synth: `cdk synth` of every stack into a fresh output directory. cdk synth adds to its
// output directory and never takes anything out of it, so the templates of a stack synthesized
// once (a dev stack from `npm run dev:up`, `-c dev=...`) and old assets would stay in cdk.out
// next to the current ones.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';

const USAGE = `usage: npm run synth [-- -o DIR] [cdk synth options]
Empties the output directory (cdk.out, or -o/--output DIR), then runs cdk synth --quiet of every
stack into it: what is there afterwards is exactly what this synth made.
  --help, -h  this text`;

/** The output directory the cdk synth arguments name (default cdk.out), absolute. */
export function outputDir(args: string[], root: string): string {
  let dir = 'cdk.out';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if ((arg === '-o' || arg === '--output') && args[i + 1] !== undefined) dir = args[++i];
    else if (arg.startsWith('--output=')) dir = arg.slice('--output='.length);
  }
  return path.resolve(root, dir);
}

/**
 * Removes a cdk output directory, and only one: a directory that is there must be empty or hold a
 * cloud assembly (manifest.json), so a mistyped -o never deletes anything else.
 * @throws Error when dir is not a cdk output directory
 */
export function removeOutputDir(dir: string): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir);
  if (entries.length > 0 && !entries.includes('manifest.json')) {
    throw new Error(`${dir} is not a cdk output directory (no manifest.json): not emptying it`);
  }
  rmSync(dir, { recursive: true, force: true });
}

function main(): number {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const root = path.join(__dirname, '..');
  try {
    removeOutputDir(outputDir(args, root));
  } catch (error) {
    console.error(`synth: ${(error as Error).message}`);
    return 2;
  }
  const cdk = path.join(root, 'node_modules', '.bin', 'cdk');
  const result = spawnSync(cdk, ['synth', '--quiet', '--no-notices', ...args], { cwd: root, stdio: 'inherit' });
  if (result.error) {
    console.error(`synth: could not run ${cdk}: ${result.error.message} (npm ci installs it)`);
    return 1;
  }
  return result.status ?? 1;
}

if (require.main === module) process.exit(main());
