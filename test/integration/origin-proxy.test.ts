// Connection reuse to the origin, on a real nginx (Debian's, with the lua module; no
// lua-resty-auto-ssl): a small nginx runs exactly the origin directives of the edge's
// nginx.conf (renderOriginProxy: the map, `upstream edge_origin` with its Lua balancer and
// keepalive pool, the proxy directives, /ready) with our lua/edge/serve/*. The origin's name
// is resolved through a real pebble-challtestsrv; the origin stand-ins are HTTPS servers with
// certificates from a test CA, one per loopback address (127.0.0.1-4), all on one port.
// Our DNS client is also tested on its own, against challtestsrv and against a scripted DNS
// server for what challtestsrv cannot do (TTLs, compression, truncation, stray answers).
import { mkdtempSync, chmodSync} from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChallTestSrv } from '../../bin/local-edge/challtestsrv';
import { OriginServer, webSocketAccept } from '../../bin/local-edge/origin-server';
import { KeyPair, makeCa, makeServerCert } from '../../bin/local-edge/pki';
import { freePort, sleep, waitFor } from '../../bin/local-edge/processes';
import { ORIGIN_PROXY_DEFAULTS, OriginProxyOptions } from '../../charts/nginx-conf';
import { logSince, markLog } from './support/error-log';
import { getJson, httpGet } from './support/http-client';
import { childPids, stopEverything } from './support/leftovers';
import { OriginProxyNginx } from './support/origin-proxy-nginx';
import { ScriptedDnsServer } from './support/scripted-dns-server';

const ORIGIN_HOST = 'origin.local.test';
/** A second origin name, for the edge that starts before its origin resolves. */
const LATE_HOST = 'late.local.test';
// challtestsrv answers with TTL 0, so the edge re-resolves at its floor (1 s); the cap is
// short here so a resolver outage shows several failed attempts within seconds.
const MAX_RESOLVE_INTERVAL_S = 2;
// Generous bounds for a shared, noisy machine: far above the 1-2 s the edge needs, far below
// "never".
const CONVERGE_MS = 20000;
const SLACK_MS = 1500;

const work = mkdtempSync(path.join(os.tmpdir(), 'origin-proxy-'));
let dns: ChallTestSrv;
const scripted = new ScriptedDnsServer();
let originPort = 0;
/** By address: 127.0.0.1 and .2 serve a certificate for the origin's names from the trusted CA. */
const origins: Record<string, OriginServer> = {};
let primary: OriginServer;
let secondary: OriginServer;
/** A certificate for another name, from the trusted CA. */
let wrongName: OriginServer;
/** A certificate for the origin's name, from a CA nginx does not trust. */
let untrusted: OriginServer;
let trustedCa: KeyPair;
let edge: OriginProxyNginx;
const nginxes: OriginProxyNginx[] = [];

interface Reply { status: number; body: string; page?: { address: string; host: string; method: string; [k: string]: unknown } }

/** One request through an edge (plain HTTP on 127.0.0.1). agent undefined: a new connection. */
function request(port: number, o: { agent?: http.Agent; method?: string; body?: string; headers?: Record<string, string>; path?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: o.path ?? '/', method: o.method ?? 'GET', agent: o.agent ?? false,
      headers: { Host: 'shop.customer.test', ...o.headers }, timeout: 30000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        let page;
        try {
          page = res.statusCode === 200 ? JSON.parse(body) : undefined;
        } catch {
          page = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, page });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(o.body);
  });
}

const keepAliveAgent = () => new http.Agent({ keepAlive: true, maxSockets: 1 });
const resetCounters = () => Object.values(origins).forEach((o) => o.resetCounters());

async function edgeOn(name: string, origin: Partial<OriginProxyOptions>): Promise<OriginProxyNginx> {
  const nginx = new OriginProxyNginx({
    dir: path.join(work, `nginx-${name}`), port: await freePort(), statusPort: await freePort(),
    origin: {
      url: `https://${ORIGIN_HOST}:${originPort}`, resolver: dns.dnsAddress,
      ...ORIGIN_PROXY_DEFAULTS, maxResolveIntervalSeconds: MAX_RESOLVE_INTERVAL_S, ...origin,
    },
    trustedCaFile: trustedCa.cert,
  });
  nginxes.push(nginx);
  await nginx.start();
  return nginx;
}

/** Waits until every worker of the edge uses exactly these addresses for the origin. */
async function converge(nginx: OriginProxyNginx, expected: string[]): Promise<void> {
  const want = [...expected].sort().join(' ');
  const latest = new Map<number, string>();
  await waitFor(`every worker at ${want}`, async () => {
    // A new connection each time: reuseport spreads them over the workers.
    const reply = await getJson<{ pid: number; addresses: string[] | Record<string, never> }>(nginx.options.statusPort, '/addresses');
    latest.set(reply.pid, (Array.isArray(reply.addresses) ? reply.addresses : []).join(' '));
    const workers = childPids(nginx.pid!);
    return workers.length > 0 && workers.every((pid) => latest.get(pid) === want);
  }, CONVERGE_MS);
}

/** Requests through the edge, counted by the origin address that answered. */
async function answeredBy(n: number, agent?: http.Agent): Promise<Record<string, number>> {
  const by: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await request(edge.options.port, { agent });
    const key = r.status === 200 ? r.page!.address : `HTTP ${r.status}`;
    by[key] = (by[key] ?? 0) + 1;
  }
  return by;
}

/** Stand-ins on one port at 127.0.0.1-4 (a port free on all four). */
async function startOrigins(good: KeyPair, wrong: KeyPair, rogue: KeyPair): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const servers = [
      new OriginServer({ tls: good, address: '127.0.0.1' }), new OriginServer({ tls: good, address: '127.0.0.2' }),
      new OriginServer({ tls: wrong, address: '127.0.0.3' }), new OriginServer({ tls: rogue, address: '127.0.0.4' }),
    ];
    try {
      for (const s of servers) await s.start(port);
    } catch (error) {
      for (const s of servers) await s.stop().catch(() => undefined);
      if (attempt < 10) continue;
      throw error;
    }
    originPort = port;
    for (const s of servers) origins[s.address] = s;
    [primary, secondary, wrongName, untrusted] = servers;
    return;
  }
}

beforeAll(async () => {
  chmodSync(work, 0o755);
  trustedCa = makeCa(work, 'origin-ca');
  chmodSync(trustedCa.cert, 0o644);
  const rogueCa = makeCa(work, 'rogue-ca');
  await startOrigins(
    makeServerCert(work, 'origin', trustedCa, [`DNS:${ORIGIN_HOST}`, `DNS:${LATE_HOST}`, 'DNS:127.0.0.1', 'IP:127.0.0.1']),
    makeServerCert(work, 'wrong-name', trustedCa, ['DNS:wrong.local.test']),
    makeServerCert(work, 'untrusted', rogueCa, [`DNS:${ORIGIN_HOST}`]),
  );
  // No default address: a name resolves only to the records a test sets.
  dns = new ChallTestSrv({ dnsPort: await freePort(), managementPort: await freePort(), defaultIPv4: '', dir: work });
  await dns.start();
  await dns.setA(ORIGIN_HOST, ['127.0.0.1']);
  await scripted.start(await freePort());
  edge = await edgeOn('main', {});
  await converge(edge, ['127.0.0.1']);
}, 60000);

afterAll(async () => {
  // Every server stopped by its PID (nginx, challtestsrv) or closed (in-process stand-ins).
  const steps = [...nginxes.map((n) => () => n.stop()), () => dns?.stop(), () => scripted.stop(), ...Object.values(origins).map((o) => () => o.stop())];
  await stopEverything(work, steps);
}, 60000);

describe('edge.serve.dns_resolver in nginx', () => {
  interface DnsReply { addresses: string[] | null; ttl: number | null; err: string | null; ms: number }
  const resolve = (name: string, server: string, extra = '') => getJson<DnsReply>(edge.options.statusPort,
    `/dns?name=${encodeURIComponent(name)}&server=${encodeURIComponent(server)}${extra}`);
  const scriptedServer = () => `127.0.0.1:${scripted.port}`;

  test('challtestsrv: every A record of a name, and the TTL it gives (0)', async () => {
    await dns.setA('two.dns.test', ['192.0.2.2', '192.0.2.1']);
    const r = await resolve('two.dns.test', dns.dnsAddress);
    expect(r.err).toBeNull();
    expect([...r.addresses!].sort()).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(r.ttl).toBe(0);
  });

  test('challtestsrv: a CNAME is followed to its target\'s addresses', async () => {
    await dns.setA('target.dns.test', ['192.0.2.7']);
    await dns.setCname('alias.dns.test', 'target.dns.test');
    expect((await resolve('alias.dns.test', dns.dnsAddress)).addresses).toEqual(['192.0.2.7']);
  });

  test('challtestsrv: SERVFAIL and a name without A records are errors', async () => {
    await dns.setServfail('broken.dns.test');
    expect((await resolve('broken.dns.test', dns.dnsAddress)).err).toBe('server failure');
    expect((await resolve('nothing.dns.test', dns.dnsAddress)).err).toBe('no A records for nothing.dns.test');
  });

  test('a CNAME chain in one compressed answer: the TTL is the smallest of the records used', async () => {
    scripted.answers.set('chain.scripted.test', {
      compress: true,
      records: [
        { name: 'chain.scripted.test', type: 'CNAME', ttl: 300, data: 'mid.scripted.test' },
        { name: 'mid.scripted.test', type: 'CNAME', ttl: 40, data: 'host.scripted.test' },
        { name: 'host.scripted.test', type: 'A', ttl: 120, data: '192.0.2.11' },
        { name: 'host.scripted.test', type: 'A', ttl: 90, data: '192.0.2.12' },
        // Not part of the chain: ignored.
        { name: 'elsewhere.scripted.test', type: 'A', ttl: 1, data: '192.0.2.99' },
      ],
    });
    const r = await resolve('Chain.Scripted.Test.', scriptedServer());
    expect(r).toMatchObject({ addresses: ['192.0.2.11', '192.0.2.12'], ttl: 40, err: null });
    expect(scripted.queriesFor('chain.scripted.test')).toHaveLength(1);
  });

  test('an answer that stops at a CNAME: the target is asked for', async () => {
    scripted.answers.set('only-cname.scripted.test', { records: [{ name: 'only-cname.scripted.test', type: 'CNAME', ttl: 50, data: 'real.scripted.test' }] });
    scripted.answers.set('real.scripted.test', { records: [{ name: 'real.scripted.test', type: 'A', ttl: 500, data: '192.0.2.20' }] });
    const r = await resolve('only-cname.scripted.test', scriptedServer());
    expect(r).toMatchObject({ addresses: ['192.0.2.20'], ttl: 50 });
    expect(scripted.queriesFor('real.scripted.test')).toHaveLength(1);
  });

  test('a truncated UDP answer is asked again over TCP', async () => {
    scripted.answers.set('big.scripted.test', { truncateUdp: true, records: [{ name: 'big.scripted.test', type: 'A', ttl: 60, data: '192.0.2.30' }] });
    const r = await resolve('big.scripted.test', scriptedServer());
    expect(r).toMatchObject({ addresses: ['192.0.2.30'], ttl: 60 });
    expect(scripted.queriesFor('big.scripted.test').map((q) => q.transport)).toEqual(['udp', 'tcp']);
  });

  test('a datagram with another query ID is not taken for the answer', async () => {
    scripted.answers.set('stray.scripted.test', { strayFirst: true, records: [{ name: 'stray.scripted.test', type: 'A', ttl: 60, data: '192.0.2.40' }] });
    expect((await resolve('stray.scripted.test', scriptedServer())).addresses).toEqual(['192.0.2.40']);
    scripted.answers.set('stray-only.scripted.test', { strayFirst: true, strayOnly: true, records: [{ name: 'stray-only.scripted.test', type: 'A', ttl: 60, data: '192.0.2.41' }] });
    const r = await resolve('stray-only.scripted.test', scriptedServer(), '&timeout=500');
    expect(r.addresses).toBeNull();
    expect(r.err).toMatch(/timeout/);
  });

  test('a server that never answers: an error after the timeout, not much later', async () => {
    scripted.answers.set('silent.scripted.test', { silent: true, records: [] });
    const r = await resolve('silent.scripted.test', scriptedServer(), '&timeout=500');
    expect(r.err).toBe('udp: timeout');
    expect(r.ms).toBeGreaterThanOrEqual(450);
    expect(r.ms).toBeLessThan(500 + SLACK_MS);
  });

  test('no server on the port: an error at once', async () => {
    const r = await resolve('any.scripted.test', `127.0.0.1:${await freePort()}`, '&timeout=2000');
    expect(r.err).toMatch(/^udp: /);
    expect(r.ms).toBeLessThan(2000);
  });

  test('AAAA records too when asked, in brackets and RFC 5952 form', async () => {
    scripted.answers.set('dual.scripted.test', {
      records: [
        { name: 'dual.scripted.test', type: 'A', ttl: 60, data: '192.0.2.50' },
        { name: 'dual.scripted.test', type: 'AAAA', ttl: 30, data: '2001:db8::5' },
      ],
    });
    expect((await resolve('dual.scripted.test', scriptedServer())).addresses).toEqual(['192.0.2.50']);
    expect(await resolve('dual.scripted.test', scriptedServer(), '&ipv6=1')).toMatchObject({ addresses: ['192.0.2.50', '[2001:db8::5]'], ttl: 30 });
  });

  test('a CNAME loop and an unknown name are errors', async () => {
    scripted.answers.set('loop-a.scripted.test', { records: [{ name: 'loop-a.scripted.test', type: 'CNAME', ttl: 60, data: 'loop-b.scripted.test' }] });
    scripted.answers.set('loop-b.scripted.test', { records: [{ name: 'loop-b.scripted.test', type: 'CNAME', ttl: 60, data: 'loop-a.scripted.test' }] });
    expect((await resolve('loop-a.scripted.test', scriptedServer())).err).toBe('more than 8 CNAMEs');
    expect((await resolve('unknown.scripted.test', scriptedServer())).err).toBe('no such name');
  });
});

describe('proxying to the origin over a keep-alive pool', () => {
  beforeEach(async () => {
    await dns.setA(ORIGIN_HOST, ['127.0.0.1']);
    await converge(edge, ['127.0.0.1']);
    resetCounters();
  });

  // Proves: connections to the origin are reused across requests and across client connections.
  test('500 requests over one client connection open at most a few origin connections', async () => {
    const agent = keepAliveAgent();
    const by = await answeredBy(500, agent);
    agent.destroy();
    expect(by).toEqual({ '127.0.0.1': 500 });
    expect(primary.counters.requests).toBe(500);
    expect(primary.counters.connections).toBeLessThanOrEqual(5);

    // A new client connection per request, each asking to close: the pool stays.
    const before = primary.counters.connections;
    for (let i = 0; i < 100; i++) {
      expect((await request(edge.options.port, { headers: { Connection: 'close' } })).status).toBe(200);
    }
    expect(primary.counters.connections - before).toBeLessThanOrEqual(10);

    // The origin closes every connection: the next requests need new ones (and full TLS
    // handshakes: lua-nginx-module's balancer does not resume TLS sessions).
    primary.closeConnections();
    await sleep(200);
    const handshakesBefore = primary.counters.tlsHandshakes;
    for (let i = 0; i < 10; i++) expect((await request(edge.options.port)).status).toBe(200);
    const newConnections = primary.counters.tlsHandshakes - handshakesBefore;
    expect(newConnections).toBeGreaterThan(0);
    console.log(`MEASURED: 600 requests -> ${before} + ${primary.counters.connections - before - newConnections} origin connections; `
      + `after the origin closed them: ${newConnections} new, ${primary.counters.resumedSessions} TLS sessions resumed`);
  });

  // Proves: Host is kept, the forwarding headers are set, and neither "Connection: upgrade"
  // nor "Connection: close" reaches the origin on an ordinary request.
  test('ordinary requests reach the origin with Host kept and without Connection: upgrade or close', async () => {
    const r = await request(edge.options.port, { headers: { Host: 'proposals.fancycorp.test', 'X-Forwarded-For': '203.0.113.9' } });
    expect(r.page).toMatchObject({ host: 'proposals.fancycorp.test', forwardedFor: '127.0.0.1', forwardedProto: 'https', forwardedHost: 'proposals.fancycorp.test' });
    await request(edge.options.port, { headers: { Connection: 'close' } });
    await request(edge.options.port, { headers: { Connection: 'keep-alive' } });
    expect(primary.counters.connectionHeaders).toEqual({ '(none)': 3 });
    expect(primary.counters.upgradeHeaders).toEqual({ '(none)': 3 });
  });

  // Proves: a WebSocket upgrade passes through (Upgrade and Connection: upgrade forwarded, the
  // key reaches the origin, bytes flow both ways after 101).
  test('a WebSocket upgrade works through the edge', async () => {
    const key = Buffer.from('edge-websocket-k').toString('base64');
    const { accept, echoed } = await new Promise<{ accept: string | undefined; echoed: string }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: edge.options.port, path: '/ws', agent: false,
        headers: { Host: 'shop.customer.test', Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
      });
      req.on('upgrade', (res, socket) => {
        let data = '';
        socket.on('data', (d) => {
          data += d.toString('utf8');
          if (data.length >= 'hello through the edge'.length) {
            socket.destroy();
            resolve({ accept: res.headers['sec-websocket-accept'] as string | undefined, echoed: data });
          }
        });
        socket.write('hello through the edge');
      });
      req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(accept).toBe(webSocketAccept(key));
    expect(echoed).toBe('hello through the edge');
    expect(primary.counters.upgrades).toBe(1);
    expect(primary.counters.connectionHeaders).toEqual({ upgrade: 1 });
    expect(primary.counters.upgradeHeaders).toEqual({ websocket: 1 });
  });

  // Proves: a pooled connection the origin closed as the edge sent on it costs the client
  // nothing for an idempotent request (retried on a new connection), and a POST is not
  // repeated (it may have been processed): 502.
  test('a dead pooled connection: a GET is retried and succeeds, a POST is not retried', async () => {
    const agent = keepAliveAgent(); // one client connection: one worker, whose pool we fill
    expect((await request(edge.options.port, { agent })).status).toBe(200);
    const mark = markLog(edge.errorLogFile);
    primary.dropOnReusedConnections = 1;
    const get = await request(edge.options.port, { agent });
    expect(get.status).toBe(200);
    expect(primary.counters.dropped).toBe(1);
    expect(primary.counters.requests).toBe(2);
    expect(logSince(mark)).toMatch(/upstream prematurely closed connection|Connection reset by peer/);

    expect((await request(edge.options.port, { agent })).status).toBe(200); // the pool holds a live connection again
    primary.dropOnReusedConnections = 1;
    const post = await request(edge.options.port, { agent, method: 'POST', body: 'order=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    agent.destroy();
    expect(post.status).toBe(502);
    expect(primary.counters.dropped).toBe(2);
    expect(primary.counters.requests).toBe(3); // the POST never reached the origin's handler twice (nor once)
  });

  // Proves: every address of the name is used (round robin per worker).
  test('an origin name with two A records: both addresses get connections and requests', async () => {
    await dns.setA(ORIGIN_HOST, ['127.0.0.1', '127.0.0.2']);
    await converge(edge, ['127.0.0.1', '127.0.0.2']);
    resetCounters();
    const agent = keepAliveAgent();
    const pooled = await answeredBy(40, agent);
    agent.destroy();
    const fresh = await answeredBy(40);
    for (const by of [pooled, fresh]) {
      expect(Object.keys(by).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
      expect(Math.min(by['127.0.0.1'], by['127.0.0.2'])).toBeGreaterThanOrEqual(10);
    }
    expect(primary.counters.connections).toBeGreaterThan(0);
    expect(secondary.counters.connections).toBeGreaterThan(0);
  });

  // Proves: when one address of the name refuses connections, requests are retried on another
  // (set_more_tries) and the dead address is then skipped for a while instead of being tried on
  // every request.
  test('one of two addresses down: every request succeeds, and the dead one is tried only now and then', async () => {
    await dns.setA(ORIGIN_HOST, ['127.0.0.1', '127.0.0.5']); // nothing listens on 127.0.0.5
    await converge(edge, ['127.0.0.1', '127.0.0.5']);
    resetCounters();
    const mark = markLog(edge.errorLogFile);
    expect(await answeredBy(40)).toEqual({ '127.0.0.1': 40 });
    const refused = logSince(mark).split('\n').filter((l) => l.includes('connect() failed') && l.includes('127.0.0.5'));
    expect(refused.length).toBeGreaterThan(0);
    // Round robin alone would try it for every other request (20 times); marked down for
    // 10 s, it is tried about once per worker.
    expect(refused.length).toBeLessThanOrEqual(2 * childPids(edge.pid!).length);
  });

  // Proves: the name is re-resolved while running, and once it moves, requests (new and on
  // client connections kept open) go to the new address: pooled connections to the old one are
  // no longer used.
  test('after the origin\'s address changes, requests go to the new one within the resolve bound', async () => {
    const agent = keepAliveAgent();
    expect((await request(edge.options.port, { agent })).page!.address).toBe('127.0.0.1');
    await dns.setA(ORIGIN_HOST, ['127.0.0.2']);
    const changedAt = Date.now();
    await waitFor('a request answered by 127.0.0.2', async () => (await request(edge.options.port, { agent })).page?.address === '127.0.0.2', CONVERGE_MS);
    const followedMs = Date.now() - changedAt;
    await converge(edge, ['127.0.0.2']);
    resetCounters();
    expect(await answeredBy(20, agent)).toEqual({ '127.0.0.2': 20 });
    agent.destroy();
    expect(await answeredBy(20)).toEqual({ '127.0.0.2': 20 });
    expect(primary.counters.requests).toBe(0);
    console.log(`MEASURED: the edge followed an address change (TTL 0, floor 1 s) in ${followedMs} ms`);
  });

  // Proves: when the resolver is down the last good addresses keep serving, and the failure is
  // logged once per worker per outage, not per attempt.
  test('a resolver outage keeps the last good addresses: requests keep succeeding', async () => {
    const mark = markLog(edge.errorLogFile);
    const ports = { dnsPort: dns.options.dnsPort, managementPort: dns.options.managementPort };
    await dns.stop();
    try {
      const statuses: Record<number, number> = {};
      // Longer than two retry intervals (2 s): every worker fails at least twice.
      const until = Date.now() + 2 * MAX_RESOLVE_INTERVAL_S * 1000 + 1500;
      while (Date.now() < until) {
        const r = await request(edge.options.port);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        await sleep(100);
      }
      expect(Object.keys(statuses)).toEqual(['200']);
      const failures = logSince(mark).split('\n').filter((l) => l.includes(`resolving origin ${ORIGIN_HOST} failed`));
      expect(failures).toHaveLength(childPids(edge.pid!).length);
      expect(failures[0]).toContain('[warn]');
      expect(failures[0]).toContain('keeping 127.0.0.1');
    } finally {
      dns = new ChallTestSrv({ ...ports, defaultIPv4: '', dir: work });
      await dns.start();
      await dns.setA(ORIGIN_HOST, ['127.0.0.1']);
    }
    await waitFor('every worker resolving again', () => (logSince(mark).match(/resolving origin origin\.local\.test works again/g) ?? []).length
      === childPids(edge.pid!).length, CONVERGE_MS);
  });

  // Proves: the origin's certificate is verified against the trusted CA and the origin's name
  // (SNI/proxy_ssl_name): a wrong one is refused before any request is sent.
  test('an origin with a certificate for another name, or from an untrusted CA, is refused (502) and gets no request', async () => {
    for (const [stand_in, logged] of [
      [wrongName, `upstream SSL certificate does not match "${ORIGIN_HOST}"`],
      [untrusted, 'upstream SSL certificate verify error'],
    ] as const) {
      await dns.setA(ORIGIN_HOST, [stand_in.address]);
      await converge(edge, [stand_in.address]);
      const mark = markLog(edge.errorLogFile);
      expect((await answeredBy(5))).toEqual({ 'HTTP 502': 5 });
      expect(stand_in.counters.tlsHandshakes).toBeGreaterThan(0);
      expect(stand_in.counters.requests).toBe(0);
      expect(logSince(mark)).toContain(logged);
    }
  });
});

describe('readiness and the first moments', () => {
  // Proves: before any worker knows the origin's addresses the edge is not ready and answers
  // 502 with one log line per worker (not per request); it becomes ready once the name resolves.
  test('an edge whose origin does not resolve yet: /ready 503 and 502s, then ready', async () => {
    await dns.setServfail(LATE_HOST);
    const late = await edgeOn('late', { url: `https://${LATE_HOST}:${originPort}` });
    const mark = markLog(late.errorLogFile);
    expect((await httpGet(late.options.statusPort, '/ready')).status).toBe(503);
    for (let i = 0; i < 10; i++) expect((await request(late.options.port)).status).toBe(502);
    const noAddress = logSince(mark).split('\n').filter((l) => l.includes(`no address for origin ${LATE_HOST} yet`));
    expect(noAddress.length).toBeGreaterThanOrEqual(1);
    expect(noAddress.length).toBeLessThanOrEqual(childPids(late.pid!).length);

    await dns.clearServfail(LATE_HOST);
    await dns.setA(LATE_HOST, ['127.0.0.1']);
    await waitFor('/ready', async () => (await httpGet(late.options.statusPort, '/ready')).status === 200, CONVERGE_MS);
    expect((await request(late.options.port)).page).toMatchObject({ address: '127.0.0.1', host: 'shop.customer.test' });
    await late.stop();
  });

  // Proves: an IP literal needs no resolver and no resolution: ready at once.
  test('an origin given as an IP literal: no resolver, ready at once', async () => {
    resetCounters();
    const literal = await edgeOn('literal', { url: `https://127.0.0.1:${originPort}`, resolver: undefined });
    expect((await httpGet(literal.options.statusPort, '/ready')).status).toBe(200);
    expect((await request(literal.options.port)).page).toMatchObject({ address: '127.0.0.1' });
    await literal.stop();
    expect(primary.counters.requests).toBe(1);
  });
});
