import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findAutoSslTree } from '../../bin/local-edge/auto-ssl-tree';
import { reportSkipped } from './support/skipped';
import { freePort } from '../../bin/local-edge/processes';
import { processesMentioning } from './support/leftovers';

// `npm run edge:local` as the README tells a newcomer to use it: start, run the printed curl,
// Ctrl-C, and nothing is left running.
const root = path.join(__dirname, '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function run(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(tsx, ['bin/edge-local.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('without lua-resty-auto-ssl it says what is missing and exits non-zero', async () => {
  const env = { ...process.env };
  delete env.AUTO_SSL_TREE;
  const child = run(env);
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  expect(await exitOf(child)).toBe(2);
  expect(stderr).toContain('edge:local needs lua-resty-auto-ssl: AUTO_SSL_TREE is not set');
});

const { tree, reason } = findAutoSslTree();
if (!tree) reportSkipped('npm run edge:local end to end', reason!);
(tree ? test : test.skip)('serves a certificate to the printed curl, and Ctrl-C stops every process it started', async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'edge-local-cli-'));
  const [http, https] = [await freePort(), await freePort()];
  const child = run({
    ...process.env, EDGE_LOCAL_DIR: work, EDGE_LOCAL_HTTP_PORT: String(http), EDGE_LOCAL_HTTPS_PORT: String(https),
    EDGE_LOCAL_ALLOW: 'cli.fancycorp.test',
  });
  const exited = exitOf(child);
  try {
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`edge:local did not start:\n${stdout}`)), 90000);
      child.stdout!.on('data', (d) => {
        stdout += d;
        if (stdout.includes('Ctrl-C stops everything.')) { clearTimeout(timer); resolve(); }
      });
    });
    // The first curl line it prints, as a person would paste it.
    const curl = stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith('curl --resolve cli.fancycorp.test'))!;
    expect(curl).toBe(`curl --resolve cli.fancycorp.test:${https}:127.0.0.1 --cacert ${work}/pebble/issuing-chain.pem https://cli.fancycorp.test:${https}/`);
    const page = await new Promise<string>((resolve, reject) => {
      execFile('curl', ['-sS', '--max-time', '60', ...curl.split(' ').slice(1)], (error, out, err) => (error ? reject(new Error(err)) : resolve(out)));
    });
    expect(JSON.parse(page)).toMatchObject({ page: 'origin', host: 'cli.fancycorp.test', forwardedProto: 'https' });
  } finally {
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(processesMentioning(work)).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  }
}, 150000);
