// The certs CLI against the real domains API: lua/edge/api/domains.lua in a real nginx over
// edge.redis_storage and a real redis-server (the harness of domains-api-openapi.test.ts; no
// lua-resty-auto-ssl, so it runs on a fresh machine). Certificates are stored as the edge's
// storage adapter stores them; nothing works the registration queue (no issuer), so a
// registered name stays queued.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { runCerts } from '../../bin/certs';
import { freePort } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';
import { expireInIndex, storeCertificate } from './support/api-certificates';
import { DomainsApiNginx } from './support/domains-api-nginx';

const PREFIX = 'local';
const EDGE_HOSTNAME = 'edge.certs-cli.test';
const work = mkdtempSync(path.join(os.tmpdir(), 'edge-certs-'));
const root = path.join(__dirname, '..', '..');
// A throwaway token made for this run (never written to a file by the test).
const token = randomBytes(24).toString('hex');
let redis: RedisServer;
let store: Redis;
let api: DomainsApiNginx;

async function certs(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCerts([...argv, '--api', api.baseUrl], { EDGE_API_TOKEN: token }, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** How many listing calls the API's access log has seen so far. */
function listCalls(): number {
  return readFileSync(path.join(api.dir, 'access.log'), 'utf8').split('\n').filter((l) => l.includes('GET /v1/domains?')).length;
}

beforeAll(async () => {
  redis = new RedisServer(await freePort(), path.join(work, 'redis'));
  await redis.start();
  store = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, retryStrategy: () => null });
  await store.connect();
  api = new DomainsApiNginx(path.join(work, 'api'), await freePort(), await freePort(), {
    token,
    redis: { host: '127.0.0.1', port: redis.port, prefix: PREFIX, connect_timeout: 500, read_timeout: 1000 },
    edge_hostnames: [EDGE_HOSTNAME],
    profile: 'classic',
  });
  await api.start();
  await storeCertificate(store, PREFIX, work, 'soon.example.com', 10);
  await storeCertificate(store, PREFIX, work, 'later.example.com', 60);
  await storeCertificate(store, PREFIX, work, 'middle.example.com', 30);
  await storeCertificate(store, PREFIX, work, 'gone.example.com', 30);
  await expireInIndex(store, PREFIX, 'gone.example.com', 3 * 86400);
  await store.set(`${PREFIX}:edge:order:later.example.com`, '1');
  // Another environment's certificate in the same Redis: never listed.
  await storeCertificate(store, 'dev-other', work, 'elsewhere.example.com', 5);
}, 60000);

afterAll(async () => {
  await store?.quit();
  await api?.stop();
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
}, 30000);

/** `npm run certs` as a process (tsx bin/certs.ts), with the environment given. */
function certsProcess(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(path.join(root, 'node_modules', '.bin', 'tsx'), ['bin/certs.ts', ...argv], {
      cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 30000,
    }, (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }));
  });
}

test('list: the environment\'s issued and expired certificates (one expired in the store\'s index), soonest expiry first, paging through the API', async () => {
  const callsBefore = listCalls();
  const result = await certs('list', '--page-size', '1');
  expect(result.code).toBe(0);
  const lines = result.out.split('\n');
  expect(lines).toHaveLength(4);
  expect(lines[0]).toMatch(/^gone\.example\.com\s+\d{4}-\d{2}-\d{2}\s+-[34] days  EXPIRED$/);
  expect(lines[1]).toMatch(/^soon\.example\.com\s+\d{4}-\d{2}-\d{2}\s+(9|10) days$/);
  expect(lines[2]).toMatch(/^middle\.example\.com\s+.*\s+(29|30) days$/);
  expect(lines[3]).toMatch(/^later\.example\.com\s+.*\s+(59|60) days$/);
  // One name per page: the expired listing (1 page) and the issued one (3 pages).
  expect(listCalls() - callsBefore).toBe(4);
});

test('list --json', async () => {
  const result = await certs('list', '--json');
  const listed = JSON.parse(result.out);
  expect(listed.map((c: any) => [c.name, c.state])).toEqual([
    ['gone.example.com', 'expired'], ['soon.example.com', 'issued'], ['middle.example.com', 'issued'], ['later.example.com', 'issued']]);
  expect(listed[1].notAfter).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
});

test('show: the status; an unknown name exits 1', async () => {
  const result = await certs('show', 'later.example.com');
  expect(result.code).toBe(0);
  expect(result.out).toMatch(/^name {10}later\.example\.com\nstate {9}issued\n/);
  expect(result.out).toMatch(/not after {5}\d{4}-\d{2}-\d{2}T[\d:]+Z \((59|60) days left\)/);
  expect(result.out).toMatch(/renew at {6}\d{4}-/);
  expect(result.out).toContain('profile       classic');
  expect(result.out).not.toMatch(/PRIVATE KEY/);
  const json = JSON.parse((await certs('show', 'gone.example.com', '--json')).out);
  expect(json).toMatchObject({ name: 'gone.example.com', state: 'expired' });
  const missing = await certs('show', 'missing.example.com');
  expect(missing).toMatchObject({ code: 1, out: '' });
  expect(missing.err).toMatch(/^certs: unknown domain missing\.example\.com/);
});

test('register: queued (202), in the store\'s queue; the edge\'s own name is refused (409), exit 1', async () => {
  const result = await certs('register', 'new.example.com');
  expect(result.code).toBe(0);
  expect(result.out).toMatch(/^registered new\.example\.com\nname {10}new\.example\.com\nstate {9}queued/);
  expect(await store.zscore(`${PREFIX}:edge:domain-queue`, 'new.example.com')).not.toBeNull();
  expect((await certs('show', 'new.example.com', '--json')).out).toContain('"state": "queued"');
  // Queued names are not certificates: list shows none of them.
  expect((await certs('list')).out).not.toContain('new.example.com');
  const own = await certs('register', EDGE_HOSTNAME);
  expect(own.code).toBe(1);
  expect(own.err).toBe(`certs: HTTP 409: one of the edge's own host names: never issued for (${EDGE_HOSTNAME})`);
});

test('expiring: certificates within N days, expired ones too; exit 1 when there are any', async () => {
  const soon = await certs('expiring', '--days', '20');
  expect(soon.code).toBe(1);
  expect(soon.out.split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['gone.example.com', 'soon.example.com']);
  expect((await certs('expiring', '--days', '0')).out).toMatch(/^gone\.example\.com .*EXPIRED$/);
  expect(JSON.parse((await certs('expiring', '--json')).out).map((c: any) => c.name)).toEqual(['gone.example.com', 'soon.example.com']);
});

test('delete: refuses without --yes, then removes the certificate and its status through the API (the order mark says deleted); an unknown name is said so', async () => {
  const refused = await certs('delete', 'later.example.com');
  expect(refused.code).toBe(2);
  expect(await store.exists(`${PREFIX}:later.example.com:latest`)).toBe(1);
  const deleted = await certs('delete', 'later.example.com', '--yes');
  expect(deleted).toMatchObject({ code: 0, out: 'deleted later.example.com: its certificate (every pod stops serving it within seconds) and its status' });
  expect(await store.exists(`${PREFIX}:later.example.com:latest`)).toBe(0);
  // The order mark now says "deleted", for 5 minutes: no order brings the certificate back meanwhile.
  expect(await store.get(`${PREFIX}:edge:order:later.example.com`)).toBe('deleted');
  expect(await store.exists('dev-other:elsewhere.example.com:latest')).toBe(1);
  // Recorded in the change feed the edge's handshake caches poll.
  expect(await store.zscore(`${PREFIX}:edge:cert-changes`, 'later.example.com')).toBe(await store.get(`${PREFIX}:edge:cert-seq`));
  expect((await certs('show', 'later.example.com')).code).toBe(1);
  const queued = await certs('delete', 'new.example.com', '--yes', '--json');
  expect(JSON.parse(queued.out)).toEqual({ name: 'new.example.com', deleted: true, certificate: false });
  expect(await store.zscore(`${PREFIX}:edge:domain-queue`, 'new.example.com')).toBeNull();
  expect((await certs('list')).out).not.toContain('later.example.com');
});

test('a wrong token: exit 1, the API\'s 401 explained, the token never printed', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const wrong = `${token}x`;
  const code = await runCerts(['list', '--api', api.baseUrl], { EDGE_API_TOKEN: wrong }, (s) => out.push(s), (s) => err.push(s));
  expect(code).toBe(1);
  expect(err.join('\n')).toBe('certs: the API refused the token (401): $EDGE_API_TOKEN is not this environment\'s domains API token');
  expect(out.join('') + err.join('')).not.toContain(token);
});

test('nothing listening: a clear error naming the port-forward, at once', async () => {
  const closed = await freePort();
  const started = Date.now();
  const result = await certsProcess({ EDGE_API_TOKEN: token }, 'list', '--api', `http://127.0.0.1:${closed}`);
  expect(result).toMatchObject({ code: 1, out: '' });
  expect(result.err).toBe(`certs: cannot reach http://127.0.0.1:${closed} (ECONNREFUSED): is the API there? `
    + 'e.g. kubectl -n <env> port-forward deploy/edge 8082:8082, then --api http://127.0.0.1:8082\n');
  expect(Date.now() - started).toBeLessThan(15000);
});

test('the wrong port (not the API: nginx\'s own 404 page) is said so', async () => {
  const result = await runCerts(['show', 'a.example.com', '--api', `http://127.0.0.1:${api.controlPort}`], { EDGE_API_TOKEN: token }, () => undefined, () => undefined);
  expect(result).toBe(1);
  const err: string[] = [];
  await runCerts(['show', 'a.example.com', '--api', `http://127.0.0.1:${api.controlPort}`], { EDGE_API_TOKEN: token }, () => undefined, (s) => err.push(s));
  expect(err.join('')).toMatch(/is not the domains API \(HTTP 404, not JSON\): check --api/);
});

test('as `npm run certs` (its own process): $EDGE_API_URL and $EDGE_API_TOKEN; the store down is a 503 explained', async () => {
  const env = { EDGE_API_URL: api.baseUrl, EDGE_API_TOKEN: token };
  const listed = await certsProcess(env, 'list');
  expect(listed).toMatchObject({ code: 0, err: '' });
  expect(listed.out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['gone.example.com', 'soon.example.com', 'middle.example.com']);
  const noToken = await certsProcess({ EDGE_API_URL: api.baseUrl }, 'list');
  expect(noToken.code).toBe(2);
  expect(noToken.err).toMatch(/^certs: \$EDGE_API_TOKEN is not set/);
  await store.quit();
  await redis.stop();
  try {
    const down = await certsProcess(env, 'show', 'soon.example.com');
    expect(down.code).toBe(1);
    expect(down.err).toBe('certs: the environment\'s certificate store is unavailable (503); nothing was changed, try again later\n');
    expect(down.out + down.err).not.toContain(token);
  } finally {
    await redis.start();
    store = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, retryStrategy: () => null });
    await store.connect();
  }
  expect((await certsProcess(env, 'show', 'soon.example.com')).code).toBe(0);
});
