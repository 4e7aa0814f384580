import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

// Every operator CLI answers --help and -h with its usage on stdout and exit 0, doing nothing else
// (no AWS, Redis, docker or lua-resty-auto-ssl needed).
const root = path.join(__dirname, '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

const clis: [string, RegExp][] = [
  ['bin/dev.ts', /^usage:\n {2}npm run dev:up -- <name>/],
  ['bin/certs.ts', /^usage: npm run certs -- /],
  ['bin/edge-local.ts', /^usage: npm run edge:local\n[\s\S]*AUTO_SSL_TREE/],
  ['bin/render.ts', /^usage: npm run render \[-- --check\]/],
  ['bin/synth.ts', /^usage: npm run synth/],
];

describe.each(clis)('%s', (script, usage) => {
  test.each(['--help', '-h'])('%s prints the usage and exits 0', (flag) => {
    // No AUTO_SSL_TREE, no AWS settings: help needs none of them.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const result = spawnSync(tsx, [script, flag], { cwd: root, env, encoding: 'utf8', timeout: 60000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(usage);
    expect(result.status).toBe(0);
  });
});

test('npm run dev:up -- --help: the action\'s argument is help too', () => {
  const result = spawnSync(tsx, ['bin/dev.ts', 'up', '--help'], { cwd: root, encoding: 'utf8', timeout: 60000 });
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^usage:/);
});

test.each([['bin/edge-local.ts', 'edge:local'], ['bin/render.ts', 'render']])('%s with an unknown argument: exit 2 with the usage', (script, name) => {
  const result = spawnSync(tsx, [script, '--bogus'], { cwd: root, encoding: 'utf8', timeout: 60000 });
  expect(result.status).toBe(2);
  expect(result.stderr).toContain(`${name}: unexpected arguments: --bogus`);
  expect(result.stderr).toContain('usage:');
});
