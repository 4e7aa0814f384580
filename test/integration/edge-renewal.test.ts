// Renewals end to end on the local edge: two nginx instances with lua-resty-auto-ssl, Redis,
// pebble issuing 30-second certificates (its certificateValidityPeriod), so real renewals happen
// within the test. pebble 2.4 has neither ARI nor profiles: the instances reach it through a
// stand-in front (FakeRetryAfterAcme) that adds both to the directory, answers renewalInfo from
// the windows a test sets, and keeps every newOrder payload. Orders are counted from pebble's log.
// Needs lua-resty-auto-ssl as a luarocks tree at $AUTO_SSL_TREE; without it: SKIPPED.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { writeCertificateEntry } from '../../bin/certs/cert-store-client';
import { findAutoSslTree } from '../../bin/local-edge/auto-ssl-tree';
import { LocalEdge } from '../../bin/local-edge/local-edge';
import { NginxInstance } from '../../bin/local-edge/nginx-instance';
import { normalizeSerial } from '../../bin/local-edge/pebble-server';
import { makeCa, makeServerCert } from '../../bin/local-edge/pki';
import { sleep } from '../../bin/local-edge/processes';
import { CERT_CHANGE_POLL_SECONDS } from '../../charts/nginx-conf';
import { ariCertId } from './support/ari-cert-id';
import { FakeRetryAfterAcme } from './support/fake-retry-after-acme';
import { httpGet, parseMetrics } from './support/http-client';
import { childPids } from './support/leftovers';
import { reportSkipped } from './support/skipped';
import { connectStore } from './support/store-client';
import { tlsProbe } from './support/tls-client';
import { until } from './support/until';

const { tree, reason } = findAutoSslTree();
if (!tree) reportSkipped('renewal end-to-end tests (lua-resty-auto-ssl, pebble)', reason!);
const describeWithAutoSsl = tree ? describe : describe.skip;

const PREFIX = 'local';
const LIFETIME_S = 30;
// Renew-at without ARI: two thirds of the lifetime.
const RENEW_AFTER_S = (LIFETIME_S * 2) / 3;
const LEASE_TTL_S = 3;
const PASS_INTERVAL_S = 1;
const PROFILE = 'shortlived';

const run = process.pid;
const name = (label: string) => `${label}-${run}.renewal.test`;

interface Entry { fullchain_pem: string; cert_pem?: string }

describeWithAutoSsl('renewals end to end: one renewer per environment, real renewals by pebble, ARI and profiles through a stand-in front', () => {
  let work = '';
  let edge: LocalEdge;
  let front: FakeRetryAfterAcme;
  let store: Redis;
  let chain = '';
  let a: NginxInstance;
  let b: NginxInstance;

  const metricsOf = async (instance: NginxInstance) => parseMetrics((await httpGet(instance.profile.instance.statusPort, '/metrics')).body);
  const renewerFlags = async () => Promise.all([a, b].map(async (i) => (await metricsOf(i)).get('edge_renewer') ?? 0));
  const direct = (instance: NginxInstance, servername: string) => tlsProbe({
    port: instance.profile.instance.httpsPort, proxyFrom: { address: '198.51.100.20', port: 40000 }, servername, ca: chain,
  });
  const stored = async (domain: string): Promise<Entry | undefined> => {
    const value = await store.get(`${PREFIX}:${domain}:latest`);
    return value ? JSON.parse(value) as Entry : undefined;
  };
  const storedSerial = async (domain: string) => {
    const entry = await stored(domain);
    return entry ? normalizeSerial(new X509Certificate(entry.cert_pem ?? entry.fullchain_pem).serialNumber) : undefined;
  };
  const state = (domain: string) => store.hgetall(`${PREFIX}:edge:renewal:${domain}`);
  const dueAt = async (domain: string) => Number(await store.zscore(`${PREFIX}:edge:renew-due`, domain));
  const ordersFor = (domain: string) => front.newOrderPayloads.filter((p) =>
    JSON.stringify(p.identifiers ?? []).includes(`"${domain}"`));

  /** Issues a certificate for a new allowed name by a handshake, and returns its serial. */
  async function issued(domain: string): Promise<string> {
    edge.domainCheck.allowed.add(domain);
    const r = await direct(a, domain);
    expect([r.error, r.verified, r.certificate?.subjectAltName]).toEqual([undefined, true, `DNS:${domain}`]);
    return r.certificate!.serial;
  }

  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'edge-renewal-'));
    edge = await LocalEdge.start({
      workDir: work,
      autoSslTree: tree!,
      certificateValiditySeconds: LIFETIME_S,
      renewal: { profile: PROFILE, renewalsPerHour: 1000, passIntervalSeconds: PASS_INTERVAL_S, leaseTtlSeconds: LEASE_TTL_S },
      acmeFront: async (pebble) => {
        front = new FakeRetryAfterAcme(pebble.ports.acme, pebble.apiCa, makeServerCert(work, 'acme-front', pebble.apiCaPair, ['DNS:localhost']));
        front.offerProfiles = true;
        await front.start();
        return front.directoryUrl;
      },
    });
    [a, b] = edge.instances;
    chain = readFileSync(edge.issuingChainFile, 'utf8');
    store = await connectStore(edge.redis.port);
  }, 240000);

  afterAll(async () => {
    store?.disconnect();
    await edge?.stop();
    await front?.stop();
    if (work && !process.env.KEEP_INTEGRATION_DIR) rmSync(work, { recursive: true, force: true });
  }, 120000);

  test('exactly one of the two instances is the renewer: it holds the lease in the store, the other does not', async () => {
    const flags = await until('one renewer', async () => {
      const f = await renewerFlags();
      return f[0] + f[1] === 1 ? f : undefined;
    }, 10000);
    const holderInstance = flags[0] === 1 ? a : b;
    const holder = await store.get(`${PREFIX}:edge:renewer-lease`);
    const holderPid = Number(holder?.split('/')[1]);
    expect(childPids(holderInstance.pid!)).toContain(holderPid);
    // And it stays that way over several lease periods.
    for (let i = 0; i < 4; i++) {
      await sleep(LEASE_TTL_S * 1000 / 2);
      expect(await renewerFlags()).toEqual(flags);
    }
  });

  test('a certificate is renewed at two thirds of its lifetime (ARI does not know it): a new order with the profile, the new certificate stored and served by both instances', async () => {
    const domain = name('lifetime');
    const first = await issued(domain);
    const issuedAt = Date.now();
    expect(await storedSerial(domain)).toBe(first);
    const before = ordersFor(domain).length;
    const renewedSerial = await until('the renewal', async () => {
      const serial = await storedSerial(domain);
      return serial && serial !== first ? serial : undefined;
    }, (LIFETIME_S + 10) * 1000);
    const after = Date.now() - issuedAt;
    console.log(`MEASURED: renewed ${(after / 1000).toFixed(1)} s after issuance (renew-at ${RENEW_AFTER_S} s, passes every ${PASS_INTERVAL_S} s)`);
    expect(after).toBeGreaterThan((RENEW_AFTER_S - 2) * 1000);
    const renewals = ordersFor(domain).slice(before);
    expect(renewals).toHaveLength(1);
    expect(renewals[0].profile).toBe(PROFILE);
    expect(renewals[0].replaces).toBeUndefined();
    // The new certificate starts a new schedule.
    expect(Number((await state(domain)).renew_at)).toBeGreaterThan(Date.now() / 1000 + RENEW_AFTER_S - 5);
    // Served by both instances within the change-poll bound.
    const served = await until('both serving the renewal', async () => {
      const serials = await Promise.all([a, b].map(async (i) => (await direct(i, domain)).certificate?.serial));
      return serials.every((s) => s === renewedSerial) ? serials : undefined;
    }, (CERT_CHANGE_POLL_SECONDS + 3) * 1000);
    expect(served).toEqual([renewedSerial, renewedSerial]);
    const renewedCount = async (i: NginxInstance) => (await metricsOf(i)).get('edge_renewals_total{outcome="renewed"}') ?? 0;
    expect(await renewedCount(a) + await renewedCount(b)).toBeGreaterThanOrEqual(1);
  }, 90000);

  test('a name the domain check no longer allows is not renewed, and its certificate is removed from the store once expired', async () => {
    const domain = name('deallowed');
    await issued(domain);
    edge.domainCheck.allowed.delete(domain);
    const ordersBefore = ordersFor(domain).length;
    const notAllowed = await until('marked not allowed', async () => ((await state(domain)).not_allowed ? true : undefined), (LIFETIME_S + 5) * 1000);
    expect(notAllowed).toBe(true);
    const gone = await until('removed after expiry', async () => ((await stored(domain)) === undefined ? true : undefined), (LIFETIME_S + 15) * 1000);
    expect(gone).toBe(true);
    expect(ordersFor(domain).length).toBe(ordersBefore);
    for (const index of ['renew-due', 'renew-at', 'cert-expiry', 'alarm-at']) {
      expect(await store.zscore(`${PREFIX}:edge:${index}`, domain)).toBeNull();
    }
  }, 90000);

  test('ARI: a past window ("renew now") is acted on at the next pass, the order carrying replaces; a future window schedules a point inside it', async () => {
    // Long-lived certificates written as the certs CLI would (a test CA): only ARI can make them due now.
    const ca = makeCa(work, 'ari-ca');
    const certFor = (domain: string) => {
      const pair = makeServerCert(work, `ari-${domain}`, ca, [`DNS:${domain}`]);
      const pem = readFileSync(pair.cert, 'utf8');
      return { pem, value: JSON.stringify({ fullchain_pem: pem, cert_pem: pem, privkey_pem: readFileSync(pair.key, 'utf8'), expiry: Math.floor(Date.now() / 1000) + 7 * 86400 }) };
    };
    const now = Date.now();
    const urgent = name('ari-now');
    const later = name('ari-later');
    const urgentCert = certFor(urgent);
    const laterCert = certFor(later);
    edge.domainCheck.allowed.add(urgent);
    edge.domainCheck.allowed.add(later);
    front.renewalWindows.set(ariCertId(urgentCert.pem), { start: new Date(now - 2 * 3600e3), end: new Date(now - 3600e3) });
    const laterWindow = { start: new Date(now + 86400e3), end: new Date(now + 2 * 86400e3) };
    front.renewalWindows.set(ariCertId(laterCert.pem), laterWindow);
    await writeCertificateEntry(store, PREFIX, urgent, urgentCert.value);
    await writeCertificateEntry(store, PREFIX, later, laterCert.value);
    // Stored with 7 days left, the first ARI look would be in 12 hours: make it now.
    await store.zadd(`${PREFIX}:edge:renew-due`, 0, urgent, 0, later);

    const replaced = await until('the ARI renewal', async () => ordersFor(urgent)[0], 15000);
    expect(replaced.replaces).toBe(ariCertId(urgentCert.pem));
    expect(replaced.profile).toBe(PROFILE);
    const renewed = await until('the renewed certificate stored', async () => {
      const entry = await stored(urgent);
      return entry && entry.fullchain_pem !== urgentCert.pem ? entry : undefined;
    }, 15000);
    expect(new X509Certificate(renewed.fullchain_pem).issuer).toMatch(/Pebble Intermediate CA/);

    const point = await until('the future window scheduled', async () => {
      const s = await state(later);
      return s.ari_point ? Number(s.ari_point) : undefined;
    }, 15000);
    expect(point * 1000).toBeGreaterThanOrEqual(laterWindow.start.getTime() - 1000);
    expect(point * 1000).toBeLessThanOrEqual(laterWindow.end.getTime() + 1000);
    expect(Number(await store.zscore(`${PREFIX}:edge:renew-at`, later))).toBe(point);
    // Looked at again when the CA's Retry-After (6 h) says, before the window opens.
    expect(await dueAt(later)).toBeGreaterThan(now / 1000 + 6 * 3600 - 60);
    expect(await dueAt(later)).toBeLessThan(now / 1000 + 6 * 3600 + 60);
    expect(ordersFor(later)).toHaveLength(0);
  }, 60000);

  test('lease failover: a frozen (partitioned) renewer loses the lease within its TTL and does not act on it when it wakes; a stopped one hands it over', async () => {
    const flags = await renewerFlags();
    expect(flags[0] + flags[1]).toBe(1);
    const [holder, other] = flags[0] === 1 ? [a, b] : [b, a];
    const holderProcesses = [holder.pid!, ...childPids(holder.pid!)];
    const frozenAt = Date.now();
    for (const pid of holderProcesses) process.kill(pid, 'SIGSTOP');
    try {
      await until('the other instance renewing', async () => ((await metricsOf(other)).get('edge_renewer') === 1 ? true : undefined),
        (LEASE_TTL_S + 2 * PASS_INTERVAL_S + 3) * 1000);
    } finally {
      for (const pid of holderProcesses) process.kill(pid, 'SIGCONT');
    }
    const tookOver = Date.now() - frozenAt;
    console.log(`MEASURED: renewer frozen; the other instance held the lease ${tookOver} ms later (TTL ${LEASE_TTL_S} s)`);
    expect(childPids(other.pid!)).toContain(Number((await store.get(`${PREFIX}:edge:renewer-lease`))?.split('/')[1]));
    // Awake again, the old holder finds the lease taken: one renewer still.
    await sleep(LEASE_TTL_S * 1000);
    expect(await renewerFlags()).toEqual(flags[0] === 1 ? [0, 1] : [1, 0]);

    // Stopped gracefully (SIGQUIT, the pods' stop signal), the new holder gives the lease up as
    // it exits: the first one takes it at its next try.
    const stoppedAt = Date.now();
    const leavingPids = childPids(other.pid!);
    await other.stop('SIGQUIT');
    const leaseAfterStop = await store.get(`${PREFIX}:edge:renewer-lease`);
    expect(leavingPids).not.toContain(Number(leaseAfterStop?.split('/')[1]));
    await until('the first instance renewing again', async () => ((await metricsOf(holder)).get('edge_renewer') === 1 ? true : undefined),
      (LEASE_TTL_S + 3) * 1000);
    console.log(`MEASURED: renewer stopped; the other instance held the lease ${Date.now() - stoppedAt} ms later`);
    await other.start();
    await sleep(LEASE_TTL_S * 1000);
    expect(await renewerFlags()).toEqual(flags);
  }, 60000);
});
