// Our Lua (lua/edge/*) in a real nginx (Debian's nginx + lua module) against a real
// redis-server and a real HTTP domain-check server. No lua-resty-auto-ssl: this suite runs on
// any machine with nginx, the lua module, lua-cjson and redis-server. (The ACME account and
// client have their own suites: acme-client.test.ts, acme-crypto.test.ts.)
import { chmodSync, mkdtempSync} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DomainCheckServer } from '../../bin/local-edge/domain-check-server';
import { freePort, sleep } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';
import { countLogLevels, logSince, markLog } from './support/error-log';
import { HarnessConfig, HarnessNginx } from './support/harness-nginx';
import { stopEverything } from './support/leftovers';
import { getJson, httpGet, parseMetrics } from './support/http-client';
import type Redis from 'ioredis';
import { connectStore } from './support/store-client';

const PREFIX = 'itest';
const EDGE_HOSTNAME = 'edge.itest.example';
// Short TTLs, each different, so the tests can see every cache expire on its own.
const TTL = { allow: 6, deny: 2, error: 1 };
const DOMAIN_CHECK_TIMEOUT_MS = 500;
const ORDER_COOLOFF_S = 8;
const PEER_WAIT_S = 3;
const REDIS_CONNECT_TIMEOUT_MS = 500;
const REDIS_READ_TIMEOUT_MS = 1000;
// The machine running this is shared and noisy: bounds leave room, but stay far below the
// 60 s an unbounded socket would take.
const SLACK_MS = 1500;

const work = mkdtempSync(path.join(os.tmpdir(), 'lua-in-nginx-'));
const domainCheck = new DomainCheckServer();
let redis: RedisServer | undefined;
let nginx: HarnessNginx | undefined;
let store: Redis | undefined;
let port = 0;
let domainCheckPort = 0;

let counter = 0;
/** A fresh name for each case, so no cache of an earlier case interferes. */
function fresh(label: string): string {
  counter += 1;
  return `${label}-${counter}-${process.pid}.customer.example`;
}

function allowName(label: string): string {
  const name = fresh(label);
  domainCheck.allowed.add(name);
  return name;
}

const q = encodeURIComponent;
const normalize = (name?: string) => getJson<{ name: string | null; why: string | null }>(port,
  name === undefined ? '/normalize' : `/normalize?name=${q(name)}`);
const verdict = (domain: string) => getJson<{ verdict: string; ms: number; worker: number }>(port, `/verdict?domain=${q(domain)}`);
interface AllowReply { allowed: boolean; ms: number; order_started: boolean; clientMs: number }
const accountEnsureCalls = async () => (await getJson<{ ensure_calls: number }>(port, '/account')).ensure_calls;
const allow = (domain: string, extra = '') => getJson<AllowReply>(port, `/allow?domain=${q(domain)}${extra}`);
const cachedDenial = (domain: string) => getJson<{ denied: boolean }>(port, `/cached_denial?domain=${q(domain)}`);
interface StorageReply { result: any; err: string | null; ms: number; clientMs: number }
const storage = (op: string, params: Record<string, string | number> = {}) => getJson<StorageReply>(port,
  `/storage?op=${op}${Object.entries(params).map(([k, v]) => `&${k}=${q(String(v))}`).join('')}`);
const metrics = async () => parseMetrics((await httpGet(port, '/metrics')).body);

beforeAll(async () => {
  chmodSync(work, 0o755);
  domainCheckPort = await domainCheck.start();
  redis = new RedisServer(await freePort(), path.join(work, 'redis'));
  await redis.start();
  store = await connectStore(redis.port);
  port = await freePort();
  const config: HarnessConfig = {
    redis: {
      host: '127.0.0.1', port: redis.port, prefix: PREFIX,
      connect_timeout: REDIS_CONNECT_TIMEOUT_MS, read_timeout: REDIS_READ_TIMEOUT_MS,
    },
    domain_check: {
      url: domainCheck.url, timeout: DOMAIN_CHECK_TIMEOUT_MS,
      allow_ttl: TTL.allow, deny_ttl: TTL.deny, error_ttl: TTL.error,
    },
    policy: { edge_hostnames: [EDGE_HOSTNAME], order_cooloff: ORDER_COOLOFF_S, peer_wait: PEER_WAIT_S, order_timeout: 90 },
  };
  nginx = new HarnessNginx(path.join(work, 'nginx'), port, config);
  await nginx.start();
}, 60000);

afterAll(async () => {
  // Every server stopped by its PID, whatever happened in the tests.
  store?.disconnect();
  await stopEverything(work, [() => nginx?.stop(), () => redis?.stop(), () => domainCheck.stop()]);
}, 60000);

afterEach(() => {
  domainCheck.mode = 'normal';
});

describe('hostname.normalize refuses what cannot be a customer hostname', () => {
  const cases: Array<[string, string | undefined, string]> = [
    ['no name', undefined, 'no server name'],
    ['an empty name', '', 'no server name'],
    ['an IPv4 literal', '192.0.2.1', 'IP literal'],
    ['an IPv4 literal with a trailing dot', '192.0.2.1.', 'IP literal'],
    ['an IPv6 literal', '2001:db8::1', 'IP literal'],
    ['an IPv6 loopback', '::1', 'IP literal'],
    ['a bracketed IPv6 literal', '[2001:db8::1]', 'IP literal'],
    ['an IPv4-mapped IPv6 literal', '::ffff:192.0.2.1', 'IP literal'],
    // Control characters are named as such, before any other check: this one's colon made it
    // an "IP literal" when the IP check came first.
    ['a line feed and a header after it', 'shop.example.com\r\nHost: other.example.com', 'control character'],
    ['a line feed', 'shop\n.example.com', 'control character'],
    ['a trailing line feed', 'shop.example.com\n', 'control character'],
    ['a NUL byte', 'shop\u0000.example.com', 'control character'],
    ['a tab', '\tshop.example.com', 'control character'],
    ['a DEL byte', 'shop\u007f.example.com', 'control character'],
    ['a name with a port', 'shop.example.com:443', 'character not allowed in a hostname'],
    ['a single label', 'localhost', 'single label'],
    ['a single label with a trailing dot', 'localhost.', 'single label'],
    ['a name over 253 characters', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`, 'longer than 253 characters'],
    ['a label over 63 characters', `${'a'.repeat(64)}.example.com`, 'label longer than 63 characters'],
    ['a label starting with a hyphen', '-shop.example.com', 'label starts or ends with a hyphen'],
    ['a label ending with a hyphen', 'shop-.example.com', 'label starts or ends with a hyphen'],
    ['an empty label', 'shop..example.com', 'empty label'],
    ['a leading dot', '.example.com', 'empty label'],
    ['a wildcard', '*.example.com', 'wildcard'],
    ['an underscore', 'my_shop.example.com', 'character not allowed in a hostname'],
    ['a space', 'my shop.example.com', 'character not allowed in a hostname'],
    ['a slash', 'shop/x.example.com', 'character not allowed in a hostname'],
    ['an at sign', 'user@example.com', 'character not allowed in a hostname'],
    ['non-ASCII (an IDN not in punycode)', 'bücher.example', 'not ASCII (internationalised names arrive as punycode)'],
  ];
  test.each(cases)('refuses %s', async (_, name, why) => {
    expect(await normalize(name)).toEqual({ name: null, why, clientMs: expect.any(Number) });
  });

  test('the length limits are inclusive: 253 characters and 63-character labels pass', async () => {
    const name253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(name253).toHaveLength(253);
    expect((await normalize(name253)).name).toBe(name253);
    expect((await normalize(`${name253}.`)).name).toBe(name253);
  });

  test('lower-cases and drops the trailing dot', async () => {
    expect((await normalize('Proposals.FancyCorp.COM')).name).toBe('proposals.fancycorp.com');
    expect((await normalize('proposals.fancycorp.com.')).name).toBe('proposals.fancycorp.com');
    expect((await normalize('WWW.Example.Co.UK.')).name).toBe('www.example.co.uk');
  });

  test('accepts punycode and digits in labels', async () => {
    expect((await normalize('xn--bcher-kva.example')).name).toBe('xn--bcher-kva.example');
    expect((await normalize('shop-24.example.com')).name).toBe('shop-24.example.com');
  });
});

describe('domain check (edge.domain_check, through edge.allow_domain where the policy matters)', () => {
  test('200 is allowed and 404 is denied', async () => {
    const ours = allowName('ours');
    const notOurs = fresh('not-ours');
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect((await verdict(notOurs)).verdict).toBe('denied');
    expect(domainCheck.requestsFor(ours)).toBe(1);
    expect(domainCheck.requestsFor(notOurs)).toBe(1);
    expect((await allow(notOurs)).allowed).toBe(false);
  });

  test('our own edge host names are refused without asking the endpoint', async () => {
    domainCheck.allowed.add(EDGE_HOSTNAME);
    try {
      const reply = await allow(EDGE_HOSTNAME);
      expect(reply.allowed).toBe(false);
      expect(domainCheck.requestsFor(EDGE_HOSTNAME)).toBe(0);
      expect(await store!.call('EXISTS', `${PREFIX}:edge:order:${EDGE_HOSTNAME}`)).toBe(0);
    } finally {
      domainCheck.allowed.delete(EDGE_HOSTNAME);
    }
  });

  test('allowed and denied verdicts are cached, each for its own TTL', async () => {
    const ours = allowName('cached-ours');
    const notOurs = fresh('cached-not-ours');
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect((await verdict(notOurs)).verdict).toBe('denied');
    const firstAt = Date.now();

    // Within both TTLs: answered from the cache, no request.
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect((await verdict(notOurs)).verdict).toBe('denied');
    expect(domainCheck.requestsFor(ours)).toBe(1);
    expect(domainCheck.requestsFor(notOurs)).toBe(1);

    // After the deny TTL (2 s) but well within the allow TTL (6 s): only the denial is asked again.
    await sleep(TTL.deny * 1000 + 700 - (Date.now() - firstAt));
    expect((await verdict(notOurs)).verdict).toBe('denied');
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect(domainCheck.requestsFor(notOurs)).toBe(2);
    expect(domainCheck.requestsFor(ours)).toBe(1);

    // After the allow TTL: asked again.
    await sleep(TTL.allow * 1000 + 700 - (Date.now() - firstAt));
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect(domainCheck.requestsFor(ours)).toBe(2);
  });

  // setup.lua asks policy:cached_denial before calling lua-resty-auto-ssl for a name it does not
  // hold: a cached denial gets the fallback without auto-ssl, which would log a notice for every
  // handshake of the name.
  test('a cached denial is answered without the endpoint and logged once per name per deny TTL', async () => {
    const notOurs = fresh('denied-quietly');
    const mark = markLog(nginx!.errorLogFile);
    const logged = () => logSince(mark).split('\n').filter((l) => l.includes(notOurs));
    expect((await cachedDenial(notOurs)).denied).toBe(false); // nothing cached yet: auto-ssl's path
    expect((await verdict(notOurs)).verdict).toBe('denied');
    for (let i = 0; i < 20; i++) expect((await cachedDenial(notOurs)).denied).toBe(true);
    expect(domainCheck.requestsFor(notOurs)).toBe(1);
    expect(logged()).toHaveLength(1);
    expect(logged()[0]).toMatch(new RegExp(`\\[info\\] .*edge: ${notOurs.replace(/\./g, '\\.')} is not ours \\(cached domain-check verdict\\): fallback certificate, not logged again for ${TTL.deny} s`));

    // After the deny TTL: not cached any more (the handshake asks again), and a new window logs once more.
    await sleep(TTL.deny * 1000 + 700);
    expect((await cachedDenial(notOurs)).denied).toBe(false);
    expect((await verdict(notOurs)).verdict).toBe('denied');
    for (let i = 0; i < 5; i++) expect((await cachedDenial(notOurs)).denied).toBe(true);
    expect(domainCheck.requestsFor(notOurs)).toBe(2);
    expect(logged()).toHaveLength(2);
  });

  test('a denial allow_domain refused (lua-resty-auto-ssl logs that handshake) is not logged again in its window', async () => {
    const notOurs = fresh('denied-by-allow');
    const mark = markLog(nginx!.errorLogFile);
    expect((await allow(notOurs)).allowed).toBe(false);
    for (let i = 0; i < 10; i++) expect((await cachedDenial(notOurs)).denied).toBe(true);
    expect(domainCheck.requestsFor(notOurs)).toBe(1);
    expect(logSince(mark).split('\n').filter((l) => l.includes(notOurs))).toEqual([]);
    // An allowed name is no cached denial: auto-ssl's path, as before.
    const ours = allowName('not-a-denial');
    expect((await verdict(ours)).verdict).toBe('allowed');
    expect((await cachedDenial(ours)).denied).toBe(false);
  });

  test('concurrent lookups of one uncached name make exactly one request', async () => {
    const name = allowName('concurrent');
    domainCheck.mode = 'slow';
    domainCheck.delayMs = 300; // below the timeout: the lookups overlap while the first waits
    const replies = await Promise.all(Array.from({ length: 16 }, () => verdict(name)));
    expect(replies.map((r) => r.verdict)).toEqual(Array(16).fill('allowed'));
    expect(domainCheck.requestsFor(name)).toBe(1);
    // The harness listens with reuseport: both workers took some of the lookups.
    const workers = new Set(replies.map((r) => r.worker));
    expect(workers.size).toBe(2);
  });

  test('a timeout fails closed within the timeout bound, and the error is cached for error_ttl only', async () => {
    const name = allowName('slow');
    domainCheck.mode = 'slow';
    domainCheck.delayMs = 4000;
    const started = Date.now();
    const first = await verdict(name);
    const elapsed = Date.now() - started;
    expect(first.verdict).toBe('error');
    // Not before the timeout (it did wait for the endpoint), and not much after it.
    expect(first.ms).toBeGreaterThanOrEqual(DOMAIN_CHECK_TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(DOMAIN_CHECK_TIMEOUT_MS + SLACK_MS);
    console.log(`MEASURED: domain check timeout (${DOMAIN_CHECK_TIMEOUT_MS} ms) answered "error" after ${first.ms.toFixed(0)} ms in nginx, ${elapsed} ms at the client`);

    // The refusal is cached for error_ttl: no new request, and the policy refuses.
    expect((await verdict(name)).verdict).toBe('error');
    expect((await allow(name)).allowed).toBe(false);
    expect(domainCheck.requestsFor(name)).toBe(1);
    expect(await store!.call('EXISTS', `${PREFIX}:edge:order:${name}`)).toBe(0);

    // After error_ttl the endpoint is asked again; now it answers in time.
    domainCheck.mode = 'normal';
    await sleep(TTL.error * 1000 + 700);
    expect((await verdict(name)).verdict).toBe('allowed');
    expect(domainCheck.requestsFor(name)).toBe(2);
  });

  test('an error answer (HTTP 500) fails closed, cached for error_ttl only', async () => {
    const name = allowName('broken');
    domainCheck.mode = 'error';
    const reply = await allow(name);
    expect(reply.allowed).toBe(false);
    expect(reply.order_started).toBe(false);
    expect((await verdict(name)).verdict).toBe('error');
    expect(domainCheck.requestsFor(name)).toBe(1);

    domainCheck.mode = 'normal';
    expect((await verdict(name)).verdict).toBe('error'); // still cached
    expect(domainCheck.requestsFor(name)).toBe(1);
    await sleep(TTL.error * 1000 + 700);
    expect((await verdict(name)).verdict).toBe('allowed');
    expect(domainCheck.requestsFor(name)).toBe(2);
  });

  test('an unreachable endpoint fails closed, fast', async () => {
    const name = allowName('unreachable');
    await domainCheck.stop(); // connection refused
    try {
      const started = Date.now();
      expect((await verdict(name)).verdict).toBe('error');
      expect(Date.now() - started).toBeLessThan(DOMAIN_CHECK_TIMEOUT_MS + SLACK_MS);
      expect((await allow(name)).allowed).toBe(false);
    } finally {
      await domainCheck.start(domainCheckPort); // the port nginx was configured with
    }
    expect(domainCheck.requestsFor(name)).toBe(0);
  });
});

describe('allow_domain policy with a stand-in for auto-ssl\'s storage wrapper', () => {
  const orderKey = (name: string) => `${PREFIX}:edge:order:${name}`;
  const storeCertificate = (name: string) => store!.call('SET', `${PREFIX}:${name}:latest`, JSON.stringify({
    fullchain_pem: '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n',
    privkey_pem: '-----BEGIN PRIVATE KEY-----\nstand-in\n-----END PRIVATE KEY-----\n',
    cert_pem: '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n',
    expiry: Math.floor(Date.now() / 1000) + 86400 * 60,
  }));

  test('a certificate in the store is allowed without an order mark (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('stored');
    await storeCertificate(name);
    const ensureCalls = await accountEnsureCalls();
    const reply = await allow(name);
    expect(reply.allowed).toBe(true);
    expect(reply.order_started).toBe(false);
    expect(await store!.call('EXISTS', orderKey(name))).toBe(0);
    expect(await accountEnsureCalls()).toBe(ensureCalls); // no order, so no account needed
  });

  test('an unreadable stored entry counts as no certificate: a new order replaces it (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('corrupt');
    await store!.call('SET', `${PREFIX}:${name}:latest`, '{not json');
    const reply = await allow(name);
    expect(reply.allowed).toBe(true);
    expect(reply.order_started).toBe(true);
    expect(await store!.call('EXISTS', orderKey(name))).toBe(1);
  });

  test('a stored certificate does not bypass the domain check (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = fresh('stored-but-denied');
    await storeCertificate(name);
    expect((await allow(name)).allowed).toBe(false);
    expect(domainCheck.requestsFor(name)).toBe(1);
  });

  test('the first allow takes the cluster-wide order mark; another during the cool-off is refused (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('order');
    const startedAt = Date.now() / 1000;
    const ensureCalls = await accountEnsureCalls();
    const first = await allow(name);
    expect(first.allowed).toBe(true);
    expect(first.order_started).toBe(true);
    expect(await accountEnsureCalls()).toBe(ensureCalls + 1); // the account is made sure of before the order

    const mark = await store!.call('GET', orderKey(name));
    expect(Number(mark)).toBeGreaterThan(startedAt - 5);
    expect(Number(mark)).toBeLessThan(startedAt + 5);
    const ttl = await store!.call('TTL', orderKey(name)) as number;
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(ORDER_COOLOFF_S);

    // A renewal during the cool-off: refused at once, the mark untouched.
    const renewal = await allow(name, '&renewal=true');
    expect(renewal.allowed).toBe(false);
    expect(renewal.order_started).toBe(false);
    expect(renewal.ms).toBeLessThan(SLACK_MS);
    expect(await store!.call('GET', orderKey(name))).toBe(mark);

    // A handshake during the cool-off: waits peer_wait for another instance's certificate,
    // none comes, refused.
    const handshake = await allow(name);
    expect(handshake.allowed).toBe(false);
    expect(handshake.ms).toBeGreaterThanOrEqual(PEER_WAIT_S * 1000 - 100);
    expect(handshake.ms).toBeLessThan(PEER_WAIT_S * 1000 + SLACK_MS);

    // Then this instance remembers the cool-off: refused without waiting again.
    const again = await allow(name);
    expect(again.allowed).toBe(false);
    expect(again.ms).toBeLessThan(PEER_WAIT_S * 1000 - 500);
    expect(await store!.call('GET', orderKey(name))).toBe(mark);
  });

  test('a handshake that finds another instance ordering waits for its certificate (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('peer');
    expect((await allow(name)).order_started).toBe(true); // "the other instance" ordered
    const waiting = allow(name);
    await sleep(200);
    await storeCertificate(name); // its certificate lands in the store
    const reply = await waiting;
    expect(reply.allowed).toBe(true);
    expect(reply.order_started).toBe(false);
    expect(reply.ms).toBeLessThan(PEER_WAIT_S * 1000 + SLACK_MS);
  });

  test('a handshake waiting for another instance\'s order stops waiting when that order fails (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('peer-fails');
    expect((await allow(name)).order_started).toBe(true); // "the other instance" ordered
    const waiting = allow(name);
    await sleep(300);
    // Its order failed: what allow_domain.order_failed writes there.
    expect(await store!.call('SET', orderKey(name), 'failed', 'XX', 'KEEPTTL')).toBe('OK');
    const reply = await waiting;
    expect(reply.allowed).toBe(false);
    expect(reply.ms).toBeLessThan(PEER_WAIT_S * 1000 - 500);
  });

  test('renewals order even with a certificate in the store, and take the order mark (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('renewal');
    await storeCertificate(name);
    const renewal = await allow(name, '&renewal=true');
    expect(renewal.allowed).toBe(true);
    expect(renewal.order_started).toBe(true);
    expect(await store!.call('EXISTS', orderKey(name))).toBe(1);
    // A second renewal run within the cool-off (another instance's renewal scan): refused at once.
    const again = await allow(name, '&renewal=true');
    expect(again.allowed).toBe(false);
    expect(again.ms).toBeLessThan(SLACK_MS);
    // Handshakes meanwhile are still served the stored certificate.
    expect((await allow(name)).allowed).toBe(true);
  });

  test('a failed order marks the name failed for the rest of its window, on every instance (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('failed-order');
    const first = await allow(name, '&failed_order=1');
    expect(first.allowed).toBe(true);
    expect(first.order_started).toBe(true);
    expect(await store!.call('GET', orderKey(name))).toBe('failed');
    const ttl = await store!.call('TTL', orderKey(name)) as number;
    expect(ttl).toBeGreaterThan(0); // KEEPTTL: the window did not restart, nor become endless
    expect(ttl).toBeLessThanOrEqual(ORDER_COOLOFF_S);

    // This instance: refused from its own memory.
    expect((await allow(name)).allowed).toBe(false);
    // Another instance (no local memory): refused without waiting for a peer, since the mark says failed.
    const other = await allow(name, '&forget_local=1');
    expect(other.allowed).toBe(false);
    expect(other.ms).toBeLessThan(PEER_WAIT_S * 1000 - 500);

    // After the window another order may be placed.
    const deadline = Date.now() + (ORDER_COOLOFF_S + 5) * 1000;
    while (await store!.call('EXISTS', orderKey(name)) === 1 && Date.now() < deadline) await sleep(200);
    expect(await store!.call('EXISTS', orderKey(name))).toBe(0);
    // The local memory lasts the mark's remaining TTL in whole seconds: up to 1 s longer.
    await sleep(1200);
    const later = await allow(name);
    expect(later.allowed).toBe(true);
    expect(later.order_started).toBe(true);
  });

  test('no ACME account: refused, and the name cools off (stand-in for auto-ssl\'s storage wrapper)', async () => {
    const name = allowName('no-account');
    await getJson(port, '/account?fail=1');
    const mark = markLog(nginx!.errorLogFile);
    try {
      const reply = await allow(name);
      expect(reply.allowed).toBe(false);
      expect(await store!.call('GET', orderKey(name))).toBe('failed');
      // The one error an operator must see: no account means no certificates at all.
      const counts = countLogLevels(mark);
      expect(counts.errorOrWorse).toBe(1);
      expect(counts.lines[0]).toMatch(/\[error\].*edge: no ACME account, not ordering no-account-/);
    } finally {
      await getJson(port, '/account?fail=0');
    }
  });
});

describe('redis_storage (our auto-ssl storage adapter) against redis-server', () => {
  const key = (k: string) => `${PREFIX}:${k}`;

  test('set and get, with and without exptime', async () => {
    const value = 'line one\r\nline two: "quoted" {json}';
    expect((await storage('set', { key: 'adapter:a', value, exptime: 30 })).result).toBe('OK');
    expect((await storage('get', { key: 'adapter:a' })).result).toBe(value);
    expect(await store!.call('GET', key('adapter:a'))).toBe(value);
    const ttl = await store!.call('TTL', key('adapter:a')) as number;
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);

    // A fractional exptime is rounded up, never to 0 (which Redis would reject).
    await storage('set', { key: 'adapter:frac', value: 'x', exptime: 0.2 });
    expect(await store!.call('TTL', key('adapter:frac'))).toBe(1);

    await storage('set', { key: 'adapter:b', value: 'forever' });
    expect(await store!.call('TTL', key('adapter:b'))).toBe(-1);
    // Overwriting without exptime drops an earlier expiry.
    await storage('set', { key: 'adapter:a', value: 'again' });
    expect(await store!.call('TTL', key('adapter:a'))).toBe(-1);

    const missing = await storage('get', { key: 'adapter:missing' });
    expect(missing.result).toBeNull();
    expect(missing.err).toBeNull();
  });

  test('add sets only when absent (NX), with an optional expiry', async () => {
    expect((await storage('add', { key: 'adapter:nx', value: 'first', exptime: 20 })).result).toBe(true);
    expect((await storage('add', { key: 'adapter:nx', value: 'second', exptime: 20 })).result).toBe(false);
    expect(await store!.call('GET', key('adapter:nx'))).toBe('first');
    const ttl = await store!.call('TTL', key('adapter:nx')) as number;
    expect(ttl).toBeGreaterThan(15);
    expect(ttl).toBeLessThanOrEqual(20);

    expect((await storage('add', { key: 'adapter:nx-forever', value: 'x' })).result).toBe(true);
    expect(await store!.call('TTL', key('adapter:nx-forever'))).toBe(-1);
  });

  test('replace changes only an existing key (XX) and keeps its expiry (KEEPTTL)', async () => {
    expect((await storage('replace', { key: 'adapter:xx-missing', value: 'x' })).result).toBe(false);
    expect(await store!.call('EXISTS', key('adapter:xx-missing'))).toBe(0);

    await store!.call('SET', key('adapter:xx'), 'old', 'EX', 100);
    expect((await storage('replace', { key: 'adapter:xx', value: 'new' })).result).toBe(true);
    expect(await store!.call('GET', key('adapter:xx'))).toBe('new');
    const ttl = await store!.call('TTL', key('adapter:xx')) as number;
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
  });

  test('delete and ttl', async () => {
    await store!.call('SET', key('adapter:del'), 'x', 'EX', 50);
    const ttl = (await storage('ttl', { key: 'adapter:del' })).result as number;
    expect(ttl).toBeGreaterThan(45);
    expect((await storage('ttl', { key: 'adapter:none' })).result).toBe(-2);
    expect((await storage('delete', { key: 'adapter:del' })).result).toBe(1);
    expect(await store!.call('EXISTS', key('adapter:del'))).toBe(0);
    expect((await storage('delete', { key: 'adapter:del' })).result).toBe(0);
  });

  test('keys_with_suffix walks the whole keyspace with SCAN and strips the prefix', async () => {
    // More keys than one SCAN step (COUNT 1000) returns, beside keys it must not return.
    const names = Array.from({ length: 2500 }, (_, i) => `scan-${i}.customer.example`);
    const mset: string[] = [];
    for (const n of names) {
      mset.push(key(`${n}:latest`), '{}', key(`${n}:challenge:token`), 'x');
    }
    await store!.call('MSET', ...mset);
    await store!.call('SET', `other-env:not-ours.example:latest`, '{}');
    await store!.call('SET', 'no-prefix.example:latest', '{}');

    const reply = await storage('keys_with_suffix', { suffix: ':latest' });
    expect(reply.err).toBeNull();
    const keys = reply.result as string[];
    const scanned = new Set(keys.filter((k) => k.startsWith('scan-')));
    expect(scanned).toEqual(new Set(names.map((n) => `${n}:latest`)));
    // Only this environment's keys, without its prefix; nothing else.
    expect(keys.every((k) => k.endsWith(':latest') && !k.startsWith(`${PREFIX}:`))).toBe(true);
    expect(keys).not.toContain('not-ours.example:latest');
    expect(keys).not.toContain('no-prefix.example:latest');
    expect(keys.filter((k) => k.includes(':challenge:'))).toEqual([]);
  });
});

describe('the store\'s certificate change feed (edge.store.cert_changes), which the handshake caches poll', () => {
  interface Changes { seq: number; names?: string[]; everything?: boolean }
  const changesSince = async (seen: number) => {
    const reply = await getJson<{ changes: Changes | null; err: string | null }>(port, `/cert_changes?seen=${seen}`);
    expect(reply.err).toBeNull();
    // Debian's lua-cjson has no empty_array: an empty list arrives as {}.
    const changes = reply.changes!;
    return changes.everything ? changes : { ...changes, names: Array.isArray(changes.names) ? changes.names : [] };
  };
  const current = async () => (await changesSince(-1)).seq;

  test('writing or deleting a certificate entry records its name under the next sequence; other keys do not', async () => {
    const name = fresh('changed');
    const before = await current();
    expect((await storage('set', { key: `${name}:latest`, value: '{"fullchain_pem":"x"}' })).err).toBeNull();
    expect(await store!.get(`${PREFIX}:${name}:latest`)).toBe('{"fullchain_pem":"x"}');
    const afterSet = await changesSince(before);
    expect(afterSet).toEqual({ seq: before + 1, names: [name] });

    // Challenges, locks and marks are not certificates: no change recorded.
    await storage('set', { key: `${name}:challenge:token`, value: 'x' });
    await storage('add', { key: `edge:order:${name}`, value: '1', exptime: 5 });
    expect(await changesSince(before + 1)).toEqual({ seq: before + 1, names: [] });

    expect((await storage('delete', { key: `${name}:latest` })).result).toBe(1);
    expect(await store!.exists(`${PREFIX}:${name}:latest`)).toBe(0);
    expect(await changesSince(before + 1)).toEqual({ seq: before + 2, names: [name] });
    // A name changed twice is listed once, under its latest change.
    expect(await changesSince(before)).toEqual({ seq: before + 2, names: [name] });
  });

  test('a reader the feed no longer reaches back to, or a reset store, is told to forget everything', async () => {
    const feed = `${PREFIX}:edge:cert-changes`;
    const start = await current();
    // Fill the feed to its bound (10,000 names) straight in Redis, then write one more through the adapter.
    const members: Array<string | number> = [];
    for (let i = 1; i <= 10000; i++) members.push(start + i, `filler-${i}.customer.example`);
    await store!.call('ZADD', feed, ...members);
    await store!.set(`${PREFIX}:edge:cert-seq`, String(start + 10000));
    const name = fresh('trims');
    await storage('set', { key: `${name}:latest`, value: '{}' });
    expect(await store!.zcard(feed)).toBe(10000);
    expect(await store!.zscore(feed, name)).toBe(String(start + 10001));
    // The oldest entry went, so a reader that saw only what came before it must start over...
    expect(await changesSince(start)).toEqual({ seq: start + 10001, everything: true });
    // ...while one that saw it gets the names.
    expect(await changesSince(start + 10000)).toEqual({ seq: start + 10001, names: [name] });

    // The store lost its data (a new Redis): the sequence went back.
    await store!.del(`${PREFIX}:edge:cert-seq`, feed, `${PREFIX}:edge:cert-changes-trimmed`);
    expect(await changesSince(start + 10001)).toEqual({ seq: 0, everything: true });
  });
});

describe('when Redis fails', () => {
  test('Redis frozen (SIGSTOP): allow fails within the read timeout and refuses', async () => {
    const name = allowName('frozen');
    expect((await verdict(name)).verdict).toBe('allowed'); // the endpoint is not what is slow
    const pid = redis!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const reply = await allow(name);
      const elapsed = Date.now() - started;
      expect(reply.allowed).toBe(false);
      expect(reply.order_started).toBe(false);
      expect(elapsed).toBeLessThan(REDIS_CONNECT_TIMEOUT_MS + REDIS_READ_TIMEOUT_MS + SLACK_MS);
      console.log(`MEASURED: allow with Redis frozen refused after ${reply.ms.toFixed(0)} ms (connect timeout ${REDIS_CONNECT_TIMEOUT_MS} ms, read timeout ${REDIS_READ_TIMEOUT_MS} ms)`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Redis is back: the same name is allowed (and its order mark taken).
    expect((await allow(name)).allowed).toBe(true);
  });

  test('Redis stopped: allow fails fast and refuses; after a restart it works again without touching nginx', async () => {
    const name = allowName('redis-down');
    expect((await storage('set', { key: 'adapter:survives', value: 'yes' })).result).toBe('OK');
    const errorsBefore = (await metrics()).get('edge_store_errors_total') ?? 0;
    const mark = markLog(nginx!.errorLogFile);
    await redis!.stop();
    try {
      const started = Date.now();
      const reply = await allow(name);
      const elapsed = Date.now() - started;
      expect(reply.allowed).toBe(false);
      expect(elapsed).toBeLessThan(REDIS_CONNECT_TIMEOUT_MS + SLACK_MS);
      console.log(`MEASURED: allow with Redis stopped refused after ${reply.ms.toFixed(0)} ms`);

      const get = await storage('get', { key: 'adapter:survives' });
      expect(get.result).toBeNull();
      expect(get.err).toMatch(/redis connect failed/);
      expect((await metrics()).get('edge_store_errors_total')).toBeGreaterThan(errorsBefore);
      // Logged as a warning with the reason, never as an error storm.
      const counts = countLogLevels(mark);
      expect(counts.errorOrWorse).toBe(0);
      expect(counts.warn).toBeLessThanOrEqual(2);
    } finally {
      store?.disconnect();
      await redis!.start(); // same port and directory: the append-only file brings the data back
      store = await connectStore(redis!.port);
    }
    expect((await storage('get', { key: 'adapter:survives' })).result).toBe('yes');
    expect((await allow(name)).allowed).toBe(true);
  });
});

describe('metrics', () => {
  test('counters of everything above, in the Prometheus text format', async () => {
    const res = await httpGet(port, '/metrics');
    expect(res.body).toMatch(/^# HELP edge_allow_verdicts_total /m);
    expect(res.body).toMatch(/^# TYPE edge_allow_verdicts_total counter$/m);
    const m = parseMetrics(res.body);
    const expected = [
      'edge_domain_check_requests_total{result="200"}',
      'edge_domain_check_requests_total{result="404"}',
      'edge_domain_check_requests_total{result="failed"}',
      'edge_domain_check_requests_total{result="unexpected"}',
      'edge_domain_check_cache_total{result="hit"}',
      'edge_domain_check_cache_total{result="miss"}',
      'edge_allow_verdicts_total{outcome="allowed"}',
      'edge_allow_verdicts_total{outcome="denied"}',
      'edge_allow_verdicts_total{outcome="error"}',
      'edge_allow_verdicts_total{outcome="edge_hostname"}',
      'edge_allow_verdicts_total{outcome="cooloff"}',
      'edge_allow_verdicts_total{outcome="store_error"}',
      'edge_allow_verdicts_total{outcome="no_account"}',
      'edge_orders_total{result="started"}',
      'edge_orders_total{result="failed"}',
      'edge_orders_total{result="cooloff"}',
      'edge_store_errors_total',
    ];
    expect(expected.filter((series) => !((m.get(series) ?? 0) > 0))).toEqual([]);
  });

  test('nothing above was logged at [error] or worse, but for the missing ACME account', () => {
    const counts = countLogLevels({ file: nginx!.errorLogFile, offset: 0 });
    const errors = counts.lines.filter((l) => !/\[warn\]/.test(l) && !/edge: no ACME account/.test(l));
    expect(errors).toEqual([]);
    console.log(`harness nginx error log: ${counts.errorOrWorse} [error]-or-worse entries, ${counts.warn} [warn] entries in the whole run`);
  });
});
