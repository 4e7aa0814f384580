import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { runCerts } from '../../bin/certs';
import { freePort } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';

// The certs CLI against a real redis-server holding certificates the way lua-resty-auto-ssl
// stores them ("<prefix>:<domain>:latest" = JSON with the PEMs and the expiry).
const work = mkdtempSync(path.join(os.tmpdir(), 'edge-certs-'));
let redis: RedisServer;
let client: Redis;
let port: number;
const PASSWORD = 'integration-test-password-not-a-secret';

/** A self-signed certificate for domain, valid for `days` days from now, as auto-ssl stores it. */
function storedCertificate(domain: string, days: number): string {
  const base = path.join(work, domain);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', String(days), '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`,
    '-keyout', `${base}.key`, '-out', `${base}.pem`], { stdio: 'ignore' });
  const cert = readFileSync(`${base}.pem`, 'utf8');
  return JSON.stringify({ fullchain_pem: cert, cert_pem: cert, privkey_pem: readFileSync(`${base}.key`, 'utf8'), expiry: Math.floor(Date.now() / 1000) + days * 86400 });
}

async function certs(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCerts([...argv, '--redis', `redis://127.0.0.1:${port}`], { REDIS_AUTH: PASSWORD }, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  port = await freePort();
  redis = new RedisServer(port, path.join(work, 'redis'), ['--requirepass', PASSWORD]);
  await redis.start();
  client = new Redis({ port, host: '127.0.0.1', password: PASSWORD });
  await client.set('local:soon.example.com:latest', storedCertificate('soon.example.com', 10));
  await client.set('local:later.example.com:latest', storedCertificate('later.example.com', 60));
  await client.set('local:edge:order:later.example.com', '1');
  await client.set('dev-other:elsewhere.example.com:latest', storedCertificate('elsewhere.example.com', 5));
  await client.set('local:edge:acme-account', '{"not":"a certificate"}');
}, 30000);

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('list: the environment\'s certificates only, soonest expiry first', async () => {
  const result = await certs('list', '--prefix', 'local');
  expect(result.code).toBe(0);
  const lines = result.out.split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^soon\.example\.com\s+\d{4}-\d{2}-\d{2}\s+(9|10) days$/);
  expect(lines[1]).toMatch(/^later\.example\.com\s+.*\s+(59|60) days$/);
});

test('list --json', async () => {
  const result = await certs('list', '--prefix', 'local', '--json');
  expect(JSON.parse(result.out).map((c: any) => c.domain)).toEqual(['soon.example.com', 'later.example.com']);
});

test('show: names, issuer, serial, validity, and never the private key', async () => {
  const result = await certs('show', 'later.example.com', '--prefix', 'local');
  expect(result.code).toBe(0);
  expect(result.out).toContain('names       later.example.com');
  expect(result.out).toMatch(/serial      [0-9a-f]+/);
  expect(result.out).not.toMatch(/PRIVATE KEY/);
  expect((await certs('show', 'missing.example.com', '--prefix', 'local')).code).toBe(1);
});

test('expiring: names within N days, exit 1 when there are any', async () => {
  const soon = await certs('expiring', '--days', '30', '--prefix', 'local');
  expect(soon.code).toBe(1);
  expect(soon.out).toContain('soon.example.com');
  expect(soon.out).not.toContain('later.example.com');
  const none = await certs('expiring', '--days', '5', '--prefix', 'local');
  expect(none).toMatchObject({ code: 0, out: 'nothing expires within 5 days' });
});

test('delete: refuses without --yes, then removes the certificate and its order mark, and records the change', async () => {
  const refused = await certs('delete', 'later.example.com', '--prefix', 'local');
  expect(refused.code).toBe(2);
  expect(await client.exists('local:later.example.com:latest')).toBe(1);
  const deleted = await certs('delete', 'later.example.com', '--prefix', 'local', '--yes');
  expect(deleted).toMatchObject({ code: 0, out: 'deleted later.example.com' });
  expect(await client.exists('local:later.example.com:latest', 'local:edge:order:later.example.com')).toBe(0);
  expect(await client.exists('dev-other:elsewhere.example.com:latest')).toBe(1);
  // Recorded in the change feed the edge's handshake caches poll, under the newest sequence.
  const seq = await client.get('local:edge:cert-seq');
  expect(seq).not.toBeNull();
  expect(await client.zscore('local:edge:cert-changes', 'later.example.com')).toBe(seq);
});

test('a wrong password fails with a clear error, not a hang', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const started = Date.now();
  const code = await runCerts(['list', '--prefix', 'local', '--redis', `redis://127.0.0.1:${port}`], { REDIS_AUTH: 'wrong' }, (s) => out.push(s), (s) => err.push(s));
  expect(code).toBe(1);
  expect(err.join('')).toMatch(/WRONGPASS|invalid password|NOAUTH/i);
  expect(Date.now() - started).toBeLessThan(5000);
});
