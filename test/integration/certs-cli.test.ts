import { createHook } from 'node:async_hooks';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { runCerts } from '../../bin/certs';
import { explainTlsFailure } from '../../bin/certs/cert-store-client';
import { makeCa, makeServerCert } from '../../bin/local-edge/pki';
import { freePort } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';

// The certs CLI against a real redis-server holding certificates the way lua-resty-auto-ssl
// stores them ("<prefix>:<domain>:latest" = JSON with the PEMs and the expiry).
const work = mkdtempSync(path.join(os.tmpdir(), 'edge-certs-'));
const root = path.join(__dirname, '..', '..');
let redis: RedisServer;
/** The same store behind TLS (rediss://), its certificate for localhost and 127.0.0.1 from a throwaway CA. */
let tlsRedis: RedisServer;
let ca: string;
let client: Redis;
let port: number;
let tlsPort: number;
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

  ca = makeCa(work, 'ca').cert;
  const server = makeServerCert(work, 'redis-tls', { cert: ca, key: path.join(work, 'ca.key') }, ['DNS:localhost', 'IP:127.0.0.1']);
  tlsPort = await freePort();
  tlsRedis = new RedisServer(tlsPort, path.join(work, 'redis-tls'), ['--port', '0', '--tls-port', String(tlsPort),
    '--tls-cert-file', server.cert, '--tls-key-file', server.key, '--tls-auth-clients', 'no', '--requirepass', PASSWORD]);
  await tlsRedis.start();
}, 30000);

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
  await tlsRedis?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** `npm run certs` as a process (its own Node, so its warnings are its own), trusting the throwaway CA. */
function certsProcess(...argv: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(path.join(root, 'node_modules', '.bin', 'tsx'), ['bin/certs.ts', ...argv], {
      cwd: root, env: { ...process.env, REDIS_AUTH: PASSWORD, NODE_EXTRA_CA_CERTS: ca }, timeout: 30000,
    }, (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, out, err, ms: Date.now() - started }));
  });
}

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

describe('TLS (rediss://)', () => {
  test('against a plain, non-TLS Redis: says TLS failed and why, not "connect ETIMEDOUT"; no warning about the IP address', async () => {
    const result = await certsProcess('list', '--prefix', 'local', '--redis', `rediss://127.0.0.1:${port}`);
    expect(result.code).toBe(1);
    expect(result.err).toContain(`certs: TLS failed: 127.0.0.1:${port} is a plain (non-TLS) Redis, it answered a plain-text PING with "-NOAUTH`);
    expect(result.err).toContain(`Use redis://127.0.0.1:${port}`);
    expect(result.err).not.toMatch(/ETIMEDOUT|RFC 6066|DeprecationWarning/);
    expect(result.ms).toBeLessThan(15000);
  });

  test('to an IP address: the certificate is verified against its IP SAN, with no SNI and no deprecation warning', async () => {
    const result = await certsProcess('list', '--prefix', 'local', '--redis', `rediss://127.0.0.1:${tlsPort}`);
    expect(result).toMatchObject({ code: 0, out: 'no certificates stored for "local"\n' });
    expect(result.err).not.toMatch(/RFC 6066|DeprecationWarning|Warning/);
  });

  test('to a host name: SNI and the name verified', async () => {
    const result = await certsProcess('list', '--prefix', 'local', '--redis', `rediss://localhost:${tlsPort}`);
    expect(result).toMatchObject({ code: 0, err: '' });
  });

  test('a server whose certificate is not trusted: TLS failed, with the reason', async () => {
    const errors: string[] = [];
    const code = await runCerts(['list', '--prefix', 'local', '--redis', `rediss://127.0.0.1:${tlsPort}`], { REDIS_AUTH: PASSWORD }, () => undefined, (s) => errors.push(s));
    expect(code).toBe(1);
    expect(errors.join('\n')).toMatch(/^certs: TLS failed: the TLS handshake with 127\.0\.0\.1:\d+ did not complete \((self-signed certificate in certificate chain|unable to (get local issuer certificate|verify the first certificate))\)$/);
  });

  test('a server that accepts but neither speaks TLS nor answers in plain text: the handshake did not complete', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      const error = await explainTlsFailure('127.0.0.1', silentPort, new Error('connect ETIMEDOUT'), 300);
      expect(error.message).toBe(`TLS failed: the TLS handshake with 127.0.0.1:${silentPort} did not complete (connect ETIMEDOUT)`);
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('nothing listening: the connection error as it is (it is not about TLS)', async () => {
    const closed = await freePort();
    const errors: string[] = [];
    const code = await runCerts(['list', '--prefix', 'local', '--redis', `rediss://127.0.0.1:${closed}`], {}, () => undefined, (s) => errors.push(s));
    expect(code).toBe(1);
    expect(errors.join('\n')).toBe(`certs: connect ECONNREFUSED 127.0.0.1:${closed}`);
  });
});

test('a failed connection leaves no timer or socket behind (jest would wait for them at exit)', async () => {
  // What the command creates that can keep a process alive, and is still there 200 ms after it returned.
  const live = new Map<number, string>();
  let recording = true;
  const hook = createHook({
    init(id, type) { if (recording && ['Timeout', 'TCPWRAP', 'TLSWRAP'].includes(type)) live.set(id, type); },
    destroy(id) { live.delete(id); },
  }).enable();
  try {
    const code = await runCerts(['list', '--prefix', 'local', '--redis', `redis://127.0.0.1:${port}`], { REDIS_AUTH: 'wrong' }, () => undefined, () => undefined);
    recording = false;
    expect(code).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
  } finally {
    hook.disable();
  }
  expect([...live.values()]).toEqual([]);
});
