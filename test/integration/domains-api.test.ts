// The domains API end to end on the local edge: two nginx instances with lua-resty-auto-ssl,
// Redis, pebble and its DNS (pebble-challtestsrv, where each test points names where it wants),
// the domain-check stand-in. The instances reach pebble through FakeRetryAfterAcme (a stand-in
// front, in "pass" mode but for the one test that slows an order down to watch "issuing").
// Orders are counted from pebble's log. Needs lua-resty-auto-ssl at $AUTO_SSL_TREE; else SKIPPED.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { writeCertificateEntry } from '../../bin/certs/cert-store-client';
import { DomainsApiClient, DomainStatus } from '../../bin/certs/domains-api-client';
import { findAutoSslTree } from '../../bin/local-edge/auto-ssl-tree';
import { LOCAL_PUBLISHED_NAME, LocalEdge } from '../../bin/local-edge/local-edge';
import { NginxInstance } from '../../bin/local-edge/nginx-instance';
import { makeCa, makeServerCert } from '../../bin/local-edge/pki';
import { sleep } from '../../bin/local-edge/processes';
import { CERT_CHANGE_POLL_SECONDS } from '../../charts/nginx-conf';
import { FakeRetryAfterAcme } from './support/fake-retry-after-acme';
import { httpGet, parseMetrics } from './support/http-client';
import { reportSkipped } from './support/skipped';
import { connectStore } from './support/store-client';
import { tlsProbe } from './support/tls-client';
import { until } from './support/until';

const { tree, reason } = findAutoSslTree();
if (!tree) reportSkipped('domains API end-to-end tests (lua-resty-auto-ssl, pebble)', reason!);
const describeWithAutoSsl = tree ? describe : describe.skip;

const PREFIX = 'local';
const ORDER_COOLOFF_S = 20;
const run = process.pid;
const name = (label: string) => `${label}-${run}.api.test`;

describeWithAutoSsl('the domains API: register before the first visitor, see the status, remove', () => {
  let work = '';
  let edge: LocalEdge;
  let front: FakeRetryAfterAcme;
  let store: Redis;
  let chain = '';
  let a: NginxInstance;
  let b: NginxInstance;
  let api: DomainsApiClient;

  const apiOf = (instance: NginxInstance, token = edge.apiToken) => new DomainsApiClient(`http://127.0.0.1:${instance.profile.instance.apiPort}`, token);
  const metricsOf = async (instance: NginxInstance) => parseMetrics((await httpGet(instance.profile.instance.statusPort, '/metrics')).body);
  const direct = (instance: NginxInstance, servername: string) => tlsProbe({
    port: instance.profile.instance.httpsPort, proxyFrom: { address: '198.51.100.20', port: 40000 }, servername, ca: chain,
  });
  const orders = () => edge.pebble.orders();
  const storeKeys = async () => (await store.keys('*')).sort();

  const untilState = (domain: string, state: DomainStatus['state'], timeoutMs = 15000) => until(`${domain} ${state}`, async () => {
    const r = await api.status(domain);
    return r.status === 200 && r.body.state === state ? r.body : undefined;
  }, timeoutMs);

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'domains-api-'));
    edge = await LocalEdge.start({
      workDir: work,
      autoSslTree: tree!,
      orderCooloffSeconds: ORDER_COOLOFF_S,
      acmeFront: async (pebble) => {
        front = new FakeRetryAfterAcme(pebble.ports.acme, pebble.apiCa, makeServerCert(work, 'acme-front', pebble.apiCaPair, ['DNS:localhost']));
        await front.start();
        return front.directoryUrl;
      },
    });
    [a, b] = edge.instances;
    chain = readFileSync(edge.issuingChainFile, 'utf8');
    store = await connectStore(edge.redis.port);
    api = apiOf(a);
  }, 240000);

  afterAll(async () => {
    store?.disconnect();
    await edge?.stop();
    await front?.stop();
    if (work && !process.env.KEEP_INTEGRATION_DIR) rmSync(work, { recursive: true, force: true });
  }, 120000);

  afterEach(() => {
    front.mode = 'pass';
  });

  test('a PUT issues the certificate with no handshake; the first handshake afterwards is served from the store, on both instances, with no order', async () => {
    const domain = name('registered');
    edge.domainCheck.allowed.add(domain);
    const ordersBefore = orders();
    const put = await api.register(domain);
    expect(put.status).toBe(202);
    expect(put.body).toMatchObject({ name: domain, state: 'queued' });
    const issued = await untilState(domain, 'issued');
    expect(orders() - ordersBefore).toBe(1);
    expect(Date.parse(issued.notAfter!)).toBeGreaterThan(Date.now());
    expect(issued.renewAt).not.toBeNull();
    expect(issued.lastError).toBeNull();
    // Idempotent: a second PUT changes nothing and orders nothing.
    const again = await apiOf(b).register(domain);
    expect([again.status, again.body.state]).toEqual([202, 'issued']);

    const storeHits = async () => (await metricsOf(a)).get('edge_handshakes_total{certificate="store"}') ?? 0;
    const hitsBefore = await storeHits();
    const served = await direct(a, domain);
    expect([served.error, served.verified, served.certificate?.subjectAltName]).toEqual([undefined, true, `DNS:${domain}`]);
    expect(await storeHits()).toBe(hitsBefore + 1);
    expect((await direct(b, domain)).verified).toBe(true);
    expect(orders() - ordersBefore).toBe(1);
    // Timed once, from the PUT to that first trusted handshake.
    const histogram = await until('the histogram', async () => {
      const m = await metricsOf(a);
      const count = (m.get('edge_domain_time_to_first_trusted_handshake_seconds_count') ?? 0)
        + ((await metricsOf(b)).get('edge_domain_time_to_first_trusted_handshake_seconds_count') ?? 0);
      return count >= 1 ? count : undefined;
    }, 5000);
    expect(histogram).toBe(1);
    expect((await store.hget(`${PREFIX}:edge:domain:${domain}`, 'first_served_at'))).not.toBeNull();
  }, 60000);

  test('states reached for real: queued, issuing, dns_not_pointing (no order), failing (a failing challenge), cooling_off, not_allowed, expired', async () => {
    // issuing: the front holds the authorization "pending" once for 3 s.
    const slow = name('slow');
    edge.domainCheck.allowed.add(slow);
    front.mode = 'pending-once';
    front.retryAfter = '3';
    expect((await api.register(slow)).body.state).toBe('queued');
    await untilState(slow, 'issuing', 5000);
    await untilState(slow, 'issued', 15000);
    front.mode = 'pass';

    // dns_not_pointing: an A record somewhere else. No order.
    const elsewhere = name('elsewhere');
    edge.domainCheck.allowed.add(elsewhere);
    await edge.pebble.dns.setA(elsewhere, ['192.0.2.10']);
    const ordersBefore = orders();
    await api.register(elsewhere);
    const notPointing = await untilState(elsewhere, 'dns_not_pointing');
    expect(notPointing.dns).toMatchObject({ status: 'not_pointing' });
    expect(notPointing.dns!.detail).toContain('192.0.2.10');
    expect(Date.parse(notPointing.nextAttemptAt!)).toBeGreaterThan(Date.now());
    expect(orders()).toBe(ordersBefore);

    // failing: the name CNAMEs to our published name (the pre-check passes), but that name's
    // address is not where pebble's validation can reach us: the challenge fails.
    const unreachable = name('unreachable');
    edge.domainCheck.allowed.add(unreachable);
    await edge.pebble.dns.setCname(unreachable, LOCAL_PUBLISHED_NAME);
    await edge.pebble.dns.setA(LOCAL_PUBLISHED_NAME, ['127.0.0.2']);
    try {
      await api.register(unreachable);
      const failing = await untilState(unreachable, 'failing', 20000);
      expect(failing.lastError).toMatch(/ACME order for .* failed/);
      expect(failing.dns).toMatchObject({ status: 'pointing' });
    } finally {
      await edge.pebble.dns.setA(LOCAL_PUBLISHED_NAME, ['127.0.0.1']);
    }
    // cooling_off: registered again while its failed order's cool-off runs: no new order.
    const ordersAfterFailure = orders();
    await api.register(unreachable);
    const cooling = await untilState(unreachable, 'cooling_off');
    expect(Date.parse(cooling.nextAttemptAt!)).toBeGreaterThan(Date.now());
    expect(orders()).toBe(ordersAfterFailure);

    // not_allowed: the domain check says 404.
    const denied = name('denied');
    await api.register(denied);
    expect((await untilState(denied, 'not_allowed')).reason).toMatch(/domain check/);

    // expired: a certificate whose notAfter has passed (written as the certs CLI would).
    const old = name('expired');
    const ca = makeCa(work, 'expired-ca');
    const pair = makeServerCert(work, `expired-${old}`, ca, [`DNS:${old}`]);
    const pem = readFileSync(pair.cert, 'utf8');
    await writeCertificateEntry(store, PREFIX, old, JSON.stringify({ fullchain_pem: pem, cert_pem: pem, privkey_pem: readFileSync(pair.key, 'utf8'), expiry: 0 }));
    // The test CA's certificates are valid for 7 days: make this one's notAfter the past in the index.
    const notAfter = Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
    expect(notAfter).toBeGreaterThan(Date.now() / 1000);
    await store.hset(`${PREFIX}:edge:renewal:${old}`, 'not_after', Math.floor(Date.now() / 1000) - 60);
    await store.zadd(`${PREFIX}:edge:cert-expiry`, Math.floor(Date.now() / 1000) - 60, old);
    expect((await api.status(old)).body.state).toBe('expired');

    // Listings by state, paged.
    const listed = await api.list('expired');
    expect(listed.body.domains).toContainEqual({ name: old, state: 'expired', notAfter: expect.stringMatching(/Z$/) });
    const firstPage = await api.list('issued', undefined, 1);
    expect(firstPage.body.domains).toHaveLength(1);
    expect(firstPage.body.nextCursor).not.toBeNull();
    const secondPage = await api.list('issued', firstPage.body.nextCursor!, 1);
    expect(secondPage.body.domains[0].name).not.toBe(firstPage.body.domains[0].name);
    expect((await api.list('dns_not_pointing')).body.domains).toContainEqual({ name: elsewhere, state: 'dns_not_pointing' });
    // Gauges of the store's names by state and of the queue.
    const m = await metricsOf(a);
    expect(m.get('edge_domains{state="dns_not_pointing"}')).toBeGreaterThanOrEqual(1);
    expect(m.has('edge_domains_queue_depth')).toBe(true);
  }, 120000);

  test('DELETE removes the certificate, queue entry and marks; both instances stop serving it within the handshake cache\'s bound', async () => {
    const domain = name('removed');
    edge.domainCheck.allowed.add(domain);
    await api.register(domain);
    await untilState(domain, 'issued');
    for (const instance of [a, b, a, b]) expect((await direct(instance, domain)).verified).toBe(true);
    // The product removes its customer: its domain check says 404 from now on.
    edge.domainCheck.allowed.delete(domain);
    const removedAt = Date.now();
    const deleted = await apiOf(b).remove(domain);
    expect(deleted).toEqual({ status: 200, body: { name: domain, deleted: true, certificate: true } });
    // Only the mark that keeps orders, and late writes of an order already running, off for 5 minutes.
    const keys = (await storeKeys()).filter((k) => k.includes(domain));
    expect(keys).toEqual([`${PREFIX}:edge:order:${domain}`]);
    expect(await store.get(`${PREFIX}:edge:order:${domain}`)).toBe('deleted');
    // A certificate an order still running would store now is refused.
    expect(await writeCertificateEntry(store, PREFIX, domain, JSON.stringify({ fullchain_pem: 'x', privkey_pem: 'y' }))).toBe(-2);
    for (const index of ['renew-due', 'renew-at', 'cert-expiry', 'alarm-at', 'domain-queue']) {
      expect(await store.zscore(`${PREFIX}:edge:${index}`, domain)).toBeNull();
    }
    await until('both instances serving the fallback', async () => {
      const results = await Promise.all([a, b].map((i) => direct(i, domain)));
      return results.every((r) => r.certificate?.subjectCN === 'fallback.invalid') ? true : undefined;
    }, (CERT_CHANGE_POLL_SECONDS + 3) * 1000);
    console.log(`MEASURED: a deleted domain stopped being served by both instances ${Date.now() - removedAt} ms after the DELETE (bound ${CERT_CHANGE_POLL_SECONDS} s)`);
    expect((await api.status(domain)).status).toBe(404);
    // Registered again: the mark goes and the name is issued anew.
    edge.domainCheck.allowed.add(domain);
    await api.register(domain);
    await untilState(domain, 'issued');
    // Each instance forgets its cached denial when the new certificate reaches its change feed.
    await until('both instances serving it again', async () => {
      const results = await Promise.all([a, b].map((i) => direct(i, domain)));
      return results.every((r) => r.verified) ? true : undefined;
    }, (CERT_CHANGE_POLL_SECONDS + 3) * 1000);
  }, 60000);

  test('bad tokens and bad names are refused with nothing written', async () => {
    const before = await storeKeys();
    const domain = name('refused');
    edge.domainCheck.allowed.add(domain);
    for (const token of ['', 'wrong', `${edge.apiToken}x`, edge.apiToken.slice(0, -1)]) {
      const r = await apiOf(a, token).register(domain);
      expect(r.status).toBe(401);
    }
    const noHeader = await fetch(`http://127.0.0.1:${a.profile.instance.apiPort}/v1/domains/${domain}`, { method: 'PUT' });
    expect(noHeader.status).toBe(401);
    expect(noHeader.headers.get('www-authenticate')).toMatch(/^Bearer/);
    for (const [bad, why] of [['not..valid', 'empty label'], ['192.0.2.1', 'IP literal'], ['under_score.example.com', 'character'], [`${'a'.repeat(64)}.example.com`, '63']] as const) {
      const r = await api.register(bad);
      expect(r.status).toBe(400);
      expect((r.body as unknown as { reason: string }).reason).toContain(why);
    }
    const own = await api.register(LOCAL_PUBLISHED_NAME);
    expect(own.status).toBe(409);
    expect((await api.list('bogus' as DomainStatus['state'])).status).toBe(400);
    expect((await api.list('issued', undefined, 5000)).status).toBe(400);
    expect(await storeKeys()).toEqual(before);
  });

  test('the API port is not behind the load balancer: through it, /v1/domains is the plain-HTTP redirect, never the API', async () => {
    const viaLb = await httpGet(edge.http.port, '/v1/domains?state=issued', { host: 'customer.example' });
    expect(viaLb.status).toBe(301);
    expect(viaLb.headers.location).toBe('https://customer.example/v1/domains?state=issued');
    // The API itself answers on its own port only.
    expect((await api.list('issued')).status).toBe(200);
  });
});
