// Renewals (lua/edge/renewal/*) and the renewal index the store's write script keeps
// (lua/edge/store/record_cert_change.lua), in a real nginx (Debian's nginx + lua module) against
// a real redis-server and a real HTTP domain-check server. No lua-resty-auto-ssl and no ACME
// server: the renewer gets stand-ins (support/lua/renewal_harness.lua) for auto-ssl's storage
// wrapper, for the issuer (it stores a "fresh" certificate instead of ordering one) and for the
// CA's ARI answers; tests that rely on the stand-in issuer say so in their names.
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { writeCertificateEntry } from '../../bin/certs/cert-store-client';
import { DomainCheckServer } from '../../bin/local-edge/domain-check-server';
import { freePort, isAlive, sleep, stopPid, waitFor } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';
import { logSince, markLog } from './support/error-log';
import { httpGet, parseMetrics } from './support/http-client';
import { childPids, stopEverything } from './support/leftovers';
import { postJson, RenewalHarnessConfig, RenewalNginx, TestCa, TestCert } from './support/renewal-nginx';
import { connectStore } from './support/store-client';

const DAY = 86400;
const HOUR = 3600;
const INDEX = { due: 'edge:renew-due', renewAt: 'edge:renew-at', expiry: 'edge:cert-expiry', alarmAt: 'edge:alarm-at' };
// The lease and the job's pace in the two job instances: short, so that a takeover is seen soon.
const JOB = { prefix: 'itest-job', lease_ttl: 3, pass_interval: 1, renewals_per_hour: 60 };
// The machine running this is shared and noisy: bounds on waits leave room.
const SLACK_MS = 5000;

const work = mkdtempSync(path.join(os.tmpdir(), 'renewal-'));
const domainCheck = new DomainCheckServer();
let redis: RedisServer | undefined;
let nginx: RenewalNginx | undefined;
const jobNginx: RenewalNginx[] = [];
let store: Redis;
let ca: TestCa;
let port = 0;
let redisConfig: RenewalHarnessConfig['redis'];

let counter = 0;
/** A fresh environment prefix per test: its own index, budget, backfill mark and lease. */
function freshPrefix(): string {
  counter += 1;
  return `itest-${counter}-${process.pid}`;
}
function name(label: string): string {
  counter += 1;
  return `${label}-${counter}.customer.example`;
}
function allowed(label: string): string {
  const n = name(label);
  domainCheck.allowed.add(n);
  return n;
}
const nowS = () => Math.floor(Date.now() / 1000);

/** What the script should schedule for a certificate. */
function schedule(c: { notBefore: number; notAfter: number }) {
  const lifetime = c.notAfter - c.notBefore;
  return {
    renewAt: Math.floor(c.notBefore + lifetime * (2 / 3)),
    expiry: c.notAfter,
    alarmAt: c.notAfter - Math.min(7 * DAY, Math.floor(lifetime * 0.1)),
  };
}

/** Debian's lua-cjson has no empty_array: an empty list arrives as {}. */
const list = <T>(x: T[] | Record<string, never> | null | undefined): T[] => (Array.isArray(x) ? x : []);

interface PassOptions {
  prefix: string; renewals_per_hour?: number; pass_interval?: number; batch?: number;
  issuer?: 'ok' | 'fail' | 'ratelimit' | 'slow'; ari?: 'none' | { error: string } | { window_start: number; window_end: number; retry_after?: number };
  lease_lost_after_orders?: number;
}
interface PassReply {
  summary: { outcomes: Record<string, number>; stopped?: string; gauges?: { past_renew_at: number; near_expiry: number; due: number } } | null;
  err: string | null;
  reads: Record<string, number>;
  issued: Array<{ name: string; replaces: string | null }>;
  ari_asked: string[];
  keeps: number;
}
async function pass(o: PassOptions): Promise<PassReply> {
  const reply = await postJson<PassReply>(port, '/pass', o);
  return { ...reply, issued: list(reply.issued), ari_asked: list(reply.ari_asked), reads: Array.isArray(reply.reads) ? {} : reply.reads };
}
const luaStore = (o: { prefix: string; op: 'set' | 'delete' | 'cert_id'; name: string; value?: string }) =>
  postJson<{ result: any; err: string | null }>(port, '/store', o);

/** The name's place in the renewal index (scores as numbers; null: absent) and its state hash. */
async function indexOf(prefix: string, n: string) {
  const score = async (key: string) => {
    const s = await store.zscore(`${prefix}:${key}`, n);
    return s === null ? null : Number(s);
  };
  return {
    due: await score(INDEX.due), renewAt: await score(INDEX.renewAt), expiry: await score(INDEX.expiry),
    alarmAt: await score(INDEX.alarmAt), state: await store.hgetall(`${prefix}:edge:renewal:${n}`),
  };
}
const seq = async (prefix: string) => Number((await store.get(`${prefix}:edge:cert-seq`)) ?? 0);
/** Makes the name due now, as if its time had come. */
const makeDue = (prefix: string, n: string) => store.zadd(`${prefix}:${INDEX.due}`, 'XX', nowS() - 1, n);
/** Stores a certificate entry with the certs CLI's writer (the same script). */
const tsWrite = (prefix: string, n: string, cert?: TestCert) => writeCertificateEntry(store, prefix, n, cert?.entry);
/** The certificate the stand-in issuer stores for this prefix: issued now, 90 days. */
async function freshCertFor(prefix: string): Promise<TestCert> {
  const t = nowS();
  const fresh = ca.issue(t - 60, t - 60 + 90 * DAY);
  await store.set(`${prefix}:harness:fresh-cert`, fresh.entry);
  return fresh;
}
const metricsOf = async (p: number) => {
  const text = (await httpGet(p, '/metrics')).body;
  return { text, values: parseMetrics(text) };
};

beforeAll(async () => {
  chmodSync(work, 0o755);
  ca = new TestCa(path.join(work, 'ca'));
  await domainCheck.start();
  redis = new RedisServer(await freePort(), path.join(work, 'redis'));
  await redis.start();
  store = await connectStore(redis.port);
  redisConfig = { host: '127.0.0.1', port: redis.port, connect_timeout: 500, read_timeout: 2000 };
  port = await freePort();
  nginx = new RenewalNginx(path.join(work, 'nginx'), port, { redis: redisConfig, domain_check: { url: domainCheck.url, timeout: 2000 } });
  await nginx.start();
}, 60000);

/** Workers of the job instances, as started: a worker whose master was killed does not mention the work directory. */
const jobWorkers = new Set<number>();
async function stopOrphanedWorkers(): Promise<void> {
  for (const pid of jobWorkers) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.startsWith('nginx: worker process') && isAlive(pid)) await stopPid(pid, 'SIGKILL', 5000);
  }
}

afterAll(async () => {
  store?.disconnect();
  await stopEverything(work, [...jobNginx.map((n) => () => n.stop()), stopOrphanedWorkers, () => nginx?.stop(), () => redis?.stop(), () => domainCheck.stop()]);
}, 60000);

afterEach(() => {
  domainCheck.mode = 'normal';
});

describe('the renewal index, kept by the store\'s write script (record_cert_change.lua)', () => {
  test('storing a 90-day and a 6-day certificate through the Lua adapter puts exact scores in the four sorted sets and the state hash', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    // 90 days, renew-at 50 days ahead: the renewer first looks in 12 hours.
    const long = ca.issue(t - 10 * DAY, t + 80 * DAY);
    // 6 days and a second (two thirds of it is no whole second), renew-at passed: due at renew-at.
    const short = ca.issue(t - 5 * DAY, t + DAY + 1);
    const [longName, shortName] = [name('ninety-days'), name('six-days')];
    const seqBefore = await seq(prefix);
    const before = nowS();
    expect(await luaStore({ prefix, op: 'set', name: longName, value: long.entry })).toEqual({ result: 1, err: null });
    expect(await luaStore({ prefix, op: 'set', name: shortName, value: short.entry })).toEqual({ result: 1, err: null });
    const after = nowS();

    const l = schedule(long);
    expect(l.alarmAt).toBe(long.notAfter - 7 * DAY);
    const li = await indexOf(prefix, longName);
    expect(li).toMatchObject({ renewAt: l.renewAt, expiry: long.notAfter, alarmAt: l.alarmAt });
    expect(li.due).toBeGreaterThanOrEqual(before + 12 * HOUR);
    expect(li.due).toBeLessThanOrEqual(after + 12 * HOUR + 1);
    expect(li.state).toEqual({ not_before: String(long.notBefore), not_after: String(long.notAfter), renew_at: String(l.renewAt) });

    const s = schedule(short);
    expect(s.renewAt).toBe(short.notBefore + 4 * DAY); // floor(518401 * 2/3) = 345600
    expect(s.alarmAt).toBe(short.notAfter - 51840); // a tenth of the lifetime, less than 7 days
    expect(await indexOf(prefix, shortName)).toEqual({
      due: s.renewAt, renewAt: s.renewAt, expiry: short.notAfter, alarmAt: s.alarmAt,
      state: { not_before: String(short.notBefore), not_after: String(short.notAfter), renew_at: String(s.renewAt) },
    });

    // Each write is a change in the feed.
    expect(await seq(prefix)).toBe(seqBefore + 2);
    expect(await store.zscore(`${prefix}:edge:cert-changes`, shortName)).toBe(String(seqBefore + 2));
  });

  test('the same value again changes only the index: no feed entry, the state reset, the schedule recomputed', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const n = name('same-again');
    await luaStore({ prefix, op: 'set', name: n, value: cert.entry });
    const seqAfterFirst = await seq(prefix);
    // What a renewer might have noted, and a schedule moved on.
    await store.hset(`${prefix}:edge:renewal:${n}`, 'attempts', '2', 'next_attempt', String(t + 600));
    await store.zadd(`${prefix}:${INDEX.due}`, t + 600, n);

    expect(await luaStore({ prefix, op: 'set', name: n, value: cert.entry })).toEqual({ result: 0, err: null });
    expect(await seq(prefix)).toBe(seqAfterFirst);
    const sc = schedule(cert);
    expect(await indexOf(prefix, n)).toEqual({
      due: sc.renewAt, renewAt: sc.renewAt, expiry: cert.notAfter, alarmAt: sc.alarmAt,
      state: { not_before: String(cert.notBefore), not_after: String(cert.notAfter), renew_at: String(sc.renewAt) },
    });
  });

  test('delete removes the entry, every index entry and the state, and records the change', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const cert = ca.issue(t - DAY, t + 5 * DAY);
    const n = name('deleted');
    await luaStore({ prefix, op: 'set', name: n, value: cert.entry });
    const seqBefore = await seq(prefix);
    expect(await luaStore({ prefix, op: 'delete', name: n })).toEqual({ result: 1, err: null });
    expect(await store.exists(`${prefix}:${n}:latest`)).toBe(0);
    expect(await indexOf(prefix, n)).toEqual({ due: null, renewAt: null, expiry: null, alarmAt: null, state: {} });
    expect(await seq(prefix)).toBe(seqBefore + 1);
    expect(await store.zscore(`${prefix}:edge:cert-changes`, n)).toBe(String(seqBefore + 1));
    // Deleting what is not there changes nothing.
    expect(await luaStore({ prefix, op: 'delete', name: n })).toEqual({ result: 0, err: null });
    expect(await seq(prefix)).toBe(seqBefore + 1);
  });

  test('the certs CLI\'s writer (writeCertificateEntry) gives the same index as the Lua adapter', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const certs = [ca.issue(t - 10 * DAY, t + 80 * DAY), ca.issue(t - 5 * DAY, t + DAY + 1), ca.issue(t - 3 * HOUR, t + 7 * DAY - 17)];
    // The entry as auto-ssl writes it, and one with only the full chain (its first certificate counts).
    const entries = certs.flatMap((cert) => [{ cert, value: cert.entry },
      { cert, value: JSON.stringify({ ...JSON.parse(cert.entry), cert_pem: undefined }) }]);
    for (const { cert, value } of entries) {
      const [viaLua, viaTs] = [name('via-lua'), name('via-ts')];
      await luaStore({ prefix, op: 'set', name: viaLua, value });
      expect(await writeCertificateEntry(store, prefix, viaTs, value)).toBe(1);
      const [a, b] = [await indexOf(prefix, viaLua), await indexOf(prefix, viaTs)];
      expect(b).toMatchObject({ renewAt: a.renewAt, expiry: a.expiry, alarmAt: a.alarmAt, state: a.state });
      expect(b.expiry).toBe(cert.notAfter);
      expect(b.state.not_before).toBe(String(cert.notBefore));
      // "Now" moved on by at most a few seconds between the two writes.
      expect(Math.abs(b.due! - a.due!)).toBeLessThanOrEqual(3);
      // And deleting through either removes it all.
      expect(await tsWrite(prefix, viaTs)).toBe(1);
      expect(await indexOf(prefix, viaTs)).toEqual({ due: null, renewAt: null, expiry: null, alarmAt: null, state: {} });
    }
  });

  test('an entry with no readable certificate is due at once (0), with no schedule, through either writer', async () => {
    const prefix = freshPrefix();
    const [viaLua, viaTs] = [name('unreadable-lua'), name('unreadable-ts')];
    const value = JSON.stringify({ fullchain_pem: 'not a certificate', privkey_pem: 'x' });
    expect(await luaStore({ prefix, op: 'set', name: viaLua, value })).toEqual({ result: 1, err: null });
    await writeCertificateEntry(store, prefix, viaTs, value);
    for (const n of [viaLua, viaTs]) {
      expect(await indexOf(prefix, n)).toEqual({ due: 0, renewAt: null, expiry: null, alarmAt: null, state: {} });
    }
  });
});

describe('the renewer lease (edge.renewal.lease)', () => {
  const lease = (op: string, o: Record<string, unknown> = {}) => postJson<{ result: any; err: string | null }>(port, '/lease', { op, ...o });

  test('one of two holders holds it; the other takes over once the holder stops extending; release hands over at once', async () => {
    const prefix = freshPrefix();
    const key = 'edge:test-lease';
    const full = `${prefix}:${key}`;
    const ttl = 2;
    await lease('new', { id: `${prefix}-a`, prefix, key, ttl, holder: 'holder-a' });
    await lease('new', { id: `${prefix}-b`, prefix, key, ttl, holder: 'holder-b' });
    const a = (op: string) => lease(op, { id: `${prefix}-a` });
    const b = (op: string) => lease(op, { id: `${prefix}-b` });

    expect((await a('hold')).result).toBe(true);
    expect((await b('hold')).result).toBe(false);
    expect((await lease('holder_of', { prefix, key })).result).toBe('holder-a');
    expect((await b('held')).result).toBe(false);
    expect((await b('keep')).result).toBe(false);
    const pttl = await store.pttl(full);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(ttl * 1000);

    // A non-holder's extension fails and does not extend it.
    await sleep(300);
    expect((await b('hold')).result).toBe(false);
    expect(await store.pttl(full)).toBeLessThan(pttl);
    expect(await store.get(full)).toBe('holder-a');

    // A stops extending: B gets it within the TTL (and a little), and by then A no longer believes it holds it.
    const stoppedAt = Date.now();
    await waitFor('holder B to take the lease over', async () => (await b('hold')).result === true, ttl * 1000 + SLACK_MS);
    const tookMs = Date.now() - stoppedAt;
    expect((await a('held')).result).toBe(false);
    expect((await lease('holder_of', { prefix, key })).result).toBe('holder-b');
    console.log(`MEASURED: the lease (TTL ${ttl} s) changed holder ${tookMs} ms after its holder stopped extending it`);

    // The old holder cannot extend it now, nor release it.
    expect((await a('hold')).result).toBe(false);
    expect((await a('keep')).result).toBe(false);
    expect((await a('release')).result).toBe(0);
    expect(await store.get(full)).toBe('holder-b');

    // Release hands over at once.
    expect((await b('release')).result).toBe(1);
    expect((await b('held')).result).toBe(false);
    expect(await store.exists(full)).toBe(0);
    expect((await a('hold')).result).toBe(true);
    expect(await store.get(full)).toBe('holder-a');
  });

  test('keep() extends the lease only once a third of its TTL has passed since the last extension', async () => {
    const prefix = freshPrefix();
    const key = 'edge:test-lease';
    const full = `${prefix}:${key}`;
    const id = `${prefix}-k`;
    await lease('new', { id, prefix, key, ttl: 3, holder: 'keeper' });
    expect((await lease('hold', { id })).result).toBe(true);
    await sleep(300);
    const before = await store.pttl(full);
    expect((await lease('keep', { id })).result).toBe(true);
    expect(await store.pttl(full)).toBeLessThanOrEqual(before); // not extended yet
    await sleep(1100);
    const stale = await store.pttl(full);
    expect((await lease('keep', { id })).result).toBe(true);
    expect(await store.pttl(full)).toBeGreaterThan(stale + 500); // extended back to about 3 s
  });

  test('when the store cannot be reached, the holder believes in the lease only until its last known expiry', async () => {
    const prefix = freshPrefix();
    const key = 'edge:test-lease';
    const id = `${prefix}-broken`;
    await lease('new', { id, prefix, key, ttl: 2, holder: 'cut-off' });
    expect((await lease('hold', { id })).result).toBe(true);
    await lease('break', { id, prefix, port: await freePort() });
    const reply = await lease('hold', { id });
    expect(reply.result).toBe(true); // still within the TTL it was given
    expect(reply.err).toMatch(/redis connect failed/);
    await sleep(2200);
    expect((await lease('held', { id })).result).toBe(false);
    expect((await lease('hold', { id })).result).toBe(false);
  });
});

describe('the renewal job (edge.renewal.job) in two nginx instances sharing one store', () => {
  const leaseKey = `${JOB.prefix}:edge:renewer-lease`;
  const renewerGauge = async (instance: RenewalNginx) => (await metricsOf(instance.port)).values.get('edge_renewer');
  const holders = async () => Promise.all(jobNginx.map(async (n) => (isAlive(n.pid ?? -1) ? renewerGauge(n) : undefined)));
  const holderIndex = async () => {
    const gauges = await holders();
    const ones = gauges.flatMap((g, i) => (g === 1 ? [i] : []));
    return ones.length === 1 && gauges.every((g, i) => g !== undefined || !isAlive(jobNginx[i].pid ?? -1)) ? ones[0] : -1;
  };

  test('exactly one instance\'s worker 0 is the renewer; when it stops, the other takes over within the TTL', async () => {
    for (const i of [0, 1]) {
      const n = new RenewalNginx(path.join(work, `job-${i}`), await freePort(),
        { redis: redisConfig, domain_check: { url: domainCheck.url, timeout: 2000 }, job: JOB }, 2);
      jobNginx.push(n);
      await n.start();
      for (const w of childPids(n.pid!)) jobWorkers.add(w);
    }
    // Both instances report the gauge (0 or 1), and exactly one reports 1.
    await waitFor('one renewer of two instances', async () => {
      const g = await holders();
      return g.every((v) => v !== undefined) && g.filter((v) => v === 1).length === 1;
    }, 3 * JOB.lease_ttl * 1000 + SLACK_MS);
    const first = await holderIndex();
    expect(first).toBeGreaterThanOrEqual(0);
    const other = 1 - first;
    // The lease names a worker of the holding instance.
    const holder = (await store.get(leaseKey))!;
    const pid = Number(holder.split('/')[1]);
    expect(childPids(jobNginx[first].pid!)).toContain(pid);
    // ...its worker 0 (connections spread over both workers: ask until both have answered).
    const workerIds = new Map<number, number>();
    await waitFor('both workers to answer', async () => {
      const who = JSON.parse((await httpGet(jobNginx[first].port, '/whoami')).body) as { pid: number; id: number };
      workerIds.set(who.pid, who.id);
      return workerIds.size === 2;
    }, SLACK_MS);
    expect(workerIds.get(pid)).toBe(0);
    // It stays with the holder while it extends it (well past the TTL).
    await sleep(JOB.lease_ttl * 1000 * 2);
    expect(await store.get(leaseKey)).toBe(holder);
    expect(await holderIndex()).toBe(first);

    // The holder has run passes: it reports the index's gauges; the other instance does not.
    await waitFor('the renewer\'s gauges', async () => (await metricsOf(jobNginx[first].port)).values.has('edge_renewal_due'), SLACK_MS);
    const holderText = (await metricsOf(jobNginx[first].port)).text;
    expect(holderText).toMatch(/^# TYPE edge_renewal_due gauge$/m);
    expect(holderText).toMatch(/^# TYPE edge_renewer gauge$/m);
    expect((await metricsOf(jobNginx[other].port)).values.has('edge_renewal_due')).toBe(false);

    // Stopped the hard way (SIGKILL: no worker can give the lease up): the other takes over
    // once the TTL has run out, at its next try.
    // (The master first, or it would start new workers; then its workers, found beforehand.)
    const killed = childPids(jobNginx[first].pid!);
    expect(killed).toHaveLength(2);
    const stoppedAt = Date.now();
    await stopPid(jobNginx[first].pid!, 'SIGKILL', 5000);
    for (const w of killed) await stopPid(w, 'SIGKILL', 5000);
    await waitFor('the other instance to take over', async () => (await renewerGauge(jobNginx[other])) === 1,
      (JOB.lease_ttl + JOB.lease_ttl / 3) * 1000 + SLACK_MS);
    console.log(`MEASURED: the renewer moved to the other instance ${Date.now() - stoppedAt} ms after the holder was killed (lease TTL ${JOB.lease_ttl} s)`);
    const second = (await store.get(leaseKey))!;
    expect(second).not.toBe(holder);
    expect(childPids(jobNginx[other].pid!)).toContain(Number(second.split('/')[1]));
    await waitFor('the new renewer\'s gauges', async () => (await metricsOf(jobNginx[other].port)).values.has('edge_renewal_due'), SLACK_MS);

    // The stopped instance comes back: it does not take the lease from the holder.
    await jobNginx[first].stop();
    await jobNginx[first].start();
    for (const w of childPids(jobNginx[first].pid!)) jobWorkers.add(w);
    await waitFor('the restarted instance to report the gauge', async () => (await renewerGauge(jobNginx[first])) !== undefined, SLACK_MS);
    await sleep(JOB.lease_ttl * 1000);
    expect(await renewerGauge(jobNginx[first])).toBe(0);
    expect(await renewerGauge(jobNginx[other])).toBe(1);
    expect(await store.get(leaseKey)).toBe(second);

    // Stopped gracefully (SIGQUIT): its worker 0 gives the lease up as it exits.
    const masterPid = jobNginx[other].pid!;
    const workers = childPids(masterPid);
    await stopPid(masterPid, 'SIGQUIT', 10000);
    await waitFor('the old workers to exit', () => workers.every((w) => !isAlive(w)), SLACK_MS);
    expect(await store.get(leaseKey)).not.toBe(second);
    await waitFor('the restarted instance to take over', async () => (await renewerGauge(jobNginx[first])) === 1,
      (JOB.lease_ttl / 3) * 1000 + SLACK_MS);
  });
});

describe('the renewal job when its worker exits during a pass', () => {
  test('stand-in issuer (slow): told to exit mid-order, worker 0 finishes that order, orders no more and gives the lease up', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const ns = [allowed('exiting-a'), allowed('exiting-b'), allowed('exiting-c')];
    for (const n of ns) await tsWrite(prefix, n, cert);
    await freshCertFor(prefix);
    // A long TTL: a lease not given up would still be there long after the exit.
    const n = new RenewalNginx(path.join(work, `job-exiting-${prefix}`), await freePort(), {
      redis: redisConfig, domain_check: { url: domainCheck.url, timeout: 2000 },
      job: { prefix, lease_ttl: 30, pass_interval: 1, renewals_per_hour: 60, issuer: 'slow' },
    }, 2);
    jobNginx.push(n);
    await n.start();
    const workers = childPids(n.pid!);
    for (const w of workers) jobWorkers.add(w);
    await waitFor('the first order to start', async () => (await store.llen(`${prefix}:harness:ordering`)) === 1, SLACK_MS);
    expect(await store.exists(`${prefix}:edge:renewer-lease`)).toBe(1);
    await stopPid(n.pid!, 'SIGQUIT', 15000);
    await waitFor('the workers to exit', () => workers.every((w) => !isAlive(w)), SLACK_MS);
    expect(await store.lrange(`${prefix}:harness:ordering`, 0, -1)).toHaveLength(1);
    const renewed = (await store.lrange(`${prefix}:harness:ordering`, 0, -1))[0];
    // That order completed and was stored; the others are still due; the lease is free.
    expect(JSON.parse((await store.get(`${prefix}:${renewed}:latest`))!).cert_pem).not.toBe(cert.certPem);
    expect(await store.zcount(`${prefix}:${INDEX.due}`, '-inf', nowS())).toBe(2);
    expect(await store.exists(`${prefix}:edge:renewer-lease`)).toBe(0);
  });
});

describe('a renewer pass (edge.renewal.renewer)', () => {
  test('stand-in issuer: a certificate past renew-at is renewed, its state reset and the new one scheduled; one not due is not read', async () => {
    const prefix = freshPrefix();
    const fresh = await freshCertFor(prefix);
    const t = nowS();
    const old = ca.issue(t - 70 * DAY, t + 20 * DAY); // renew-at 10 days ago
    const current = ca.issue(t - DAY, t + 89 * DAY);
    const [due, notDue] = [allowed('past-renew-at'), allowed('not-due')];
    await tsWrite(prefix, due, old);
    await tsWrite(prefix, notDue, current);
    const notDueBefore = await indexOf(prefix, notDue);
    const seqBefore = await seq(prefix);

    const before = nowS();
    const reply = await pass({ prefix, issuer: 'ok' });
    const after = nowS();
    expect(reply.err).toBeNull();
    expect(reply.summary!.outcomes).toEqual({ renewed: 1 });
    expect(reply.summary!.stopped).toBeUndefined();
    expect(reply.issued).toEqual([{ name: due, replaces: null }]);
    expect(domainCheck.requestsFor(due)).toBe(1); // asked afresh before the order
    expect(reply.reads[notDue]).toBeUndefined();
    expect(domainCheck.requestsFor(notDue)).toBe(0);

    // The stand-in issuer's certificate is stored; the store's script reset the state and scheduled it.
    expect(JSON.parse((await store.get(`${prefix}:${due}:latest`))!).cert_pem).toBe(fresh.certPem);
    const sc = schedule(fresh);
    const idx = await indexOf(prefix, due);
    expect(idx).toMatchObject({ renewAt: sc.renewAt, expiry: fresh.notAfter, alarmAt: sc.alarmAt });
    expect(idx.state).toEqual({ not_before: String(fresh.notBefore), not_after: String(fresh.notAfter), renew_at: String(sc.renewAt) });
    expect(idx.due).toBeGreaterThanOrEqual(before + 12 * HOUR);
    expect(idx.due).toBeLessThanOrEqual(after + 12 * HOUR + 1);
    expect(await seq(prefix)).toBe(seqBefore + 1);
    // The order counted against the hour's budget.
    expect(await store.zcard(`${prefix}:edge:renewal-orders`)).toBe(1);
    // The one not due: untouched.
    expect(await indexOf(prefix, notDue)).toEqual(notDueBefore);
  });

  test('due for a look but not for renewal (no ARI): not renewed, not asked about, rescheduled to its renew-at', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - 10 * DAY, t + 80 * DAY);
    const n = allowed('look-only');
    await tsWrite(prefix, n, cert);
    await makeDue(prefix, n); // twelve hours later, as it were
    const reply = await pass({ prefix, issuer: 'ok', ari: 'none' });
    expect(reply.summary!.outcomes).toEqual({ scheduled: 1 });
    expect(reply.issued).toEqual([]);
    expect(domainCheck.requestsFor(n)).toBe(0);
    expect(reply.ari_asked).toEqual([cert.certId]);
    expect((await indexOf(prefix, n)).due).toBe(schedule(cert).renewAt);
  });

  test('stand-in issuer: an ARI window in the past renews at once, the order replacing the old certificate\'s ARI identifier', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    // Serial with its high bit set: the identifier's serial part gets a leading zero octet.
    const cert = ca.issue(t - DAY, t + 89 * DAY, `f1${'5a'.repeat(15)}`);
    const n = allowed('ari-past');
    await tsWrite(prefix, n, cert);
    expect((await luaStore({ prefix, op: 'cert_id', name: n })).result).toBe(cert.certId);
    await makeDue(prefix, n);
    const reply = await pass({ prefix, issuer: 'ok', ari: { window_start: t - 2 * HOUR, window_end: t - HOUR, retry_after: 3 * HOUR } });
    expect(reply.summary!.outcomes).toEqual({ renewed: 1 });
    expect(reply.ari_asked).toEqual([cert.certId]);
    expect(reply.issued).toEqual([{ name: n, replaces: cert.certId }]);
    expect(reply.reads[n]).toBe(1); // read once, for its ARI identifier
    // The new certificate's state carries nothing of the old ARI window.
    expect(Object.keys((await indexOf(prefix, n)).state).sort()).toEqual(['not_after', 'not_before', 'renew_at']);
  });

  test('a future ARI window: a point inside it becomes the renew-at, looked at again when Retry-After says', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - DAY, t + 89 * DAY, `0a${'3c'.repeat(15)}`);
    const n = allowed('ari-future');
    await tsWrite(prefix, n, cert);
    await makeDue(prefix, n);
    const window = { window_start: t + 5 * DAY, window_end: t + 6 * DAY, retry_after: 3 * HOUR };
    const before = nowS();
    const first = await pass({ prefix, issuer: 'ok', ari: window });
    const after = nowS();
    expect(first.summary!.outcomes).toEqual({ scheduled: 1 });
    expect(first.issued).toEqual([]);
    expect(domainCheck.requestsFor(n)).toBe(0);
    let idx = await indexOf(prefix, n);
    const point = Number(idx.state.ari_point);
    expect(point).toBeGreaterThanOrEqual(window.window_start);
    expect(point).toBeLessThanOrEqual(window.window_end);
    expect(idx.renewAt).toBe(point);
    expect(idx.state).toMatchObject({ cert_id: cert.certId, ari_start: String(window.window_start), ari_end: String(window.window_end) });
    const ariNext = Number(idx.state.ari_next);
    expect(ariNext).toBeGreaterThanOrEqual(before + 3 * HOUR);
    expect(ariNext).toBeLessThanOrEqual(after + 3 * HOUR + 1);
    expect(idx.due).toBe(ariNext); // before the point: the window is asked again first

    // Due again before Retry-After: ARI is not asked, the certificate not read.
    await makeDue(prefix, n);
    const second = await pass({ prefix, issuer: 'ok', ari: window });
    expect(second.summary!.outcomes).toEqual({ scheduled: 1 });
    expect(second.ari_asked).toEqual([]);
    expect(second.reads[n]).toBeUndefined();
    expect((await indexOf(prefix, n)).due).toBe(ariNext);

    // After Retry-After, the same window: asked (by the stored identifier, no read), the point kept.
    await store.hset(`${prefix}:edge:renewal:${n}`, 'ari_next', String(nowS() - 1));
    await makeDue(prefix, n);
    const third = await pass({ prefix, issuer: 'ok', ari: { ...window, retry_after: 5 } });
    expect(third.ari_asked).toEqual([cert.certId]);
    expect(third.reads[n]).toBeUndefined();
    idx = await indexOf(prefix, n);
    expect(Number(idx.state.ari_point)).toBe(point);
    // A Retry-After below a minute counts as a minute.
    expect(Number(idx.state.ari_next)).toBeGreaterThanOrEqual(nowS() + 55);
    expect(Number(idx.state.ari_next)).toBeLessThanOrEqual(nowS() + 61);

    // A new window: a new point, inside it.
    await store.hset(`${prefix}:edge:renewal:${n}`, 'ari_next', String(nowS() - 1));
    await makeDue(prefix, n);
    const moved = { window_start: t + 10 * DAY, window_end: t + 10 * DAY + 600, retry_after: 3 * HOUR };
    await pass({ prefix, issuer: 'ok', ari: moved });
    idx = await indexOf(prefix, n);
    expect(Number(idx.state.ari_point)).toBeGreaterThanOrEqual(moved.window_start);
    expect(Number(idx.state.ari_point)).toBeLessThanOrEqual(moved.window_end);
    expect(idx.renewAt).toBe(Number(idx.state.ari_point));
  });

  test('an ARI error: scheduled by the lifetime, ARI asked again in an hour', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - DAY, t + 89 * DAY);
    const n = allowed('ari-error');
    await tsWrite(prefix, n, cert);
    await makeDue(prefix, n);
    const before = nowS();
    const reply = await pass({ prefix, issuer: 'ok', ari: { error: 'stand-in ARI failure' } });
    const after = nowS();
    expect(reply.summary!.outcomes).toEqual({ scheduled: 1 });
    const idx = await indexOf(prefix, n);
    expect(idx.renewAt).toBe(schedule(cert).renewAt);
    expect(idx.due).toBeGreaterThanOrEqual(before + HOUR);
    expect(idx.due).toBeLessThanOrEqual(after + HOUR + 1);
    expect(idx.state.cert_id).toBe(cert.certId);
  });

  test('stand-in issuer: failures back off 60 s, 600 s, 6000 s, then a day; a success resets the state', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const n = allowed('failing');
    await tsWrite(prefix, n, cert);
    const backoff = [60, 600, 6000, DAY, DAY];
    const stateKey = `${prefix}:edge:renewal:${n}`;
    for (let attempt = 1; attempt <= backoff.length; attempt++) {
      if (attempt === 2) {
        // Due again (a lost due time) while the backoff runs: no order, back to its next attempt.
        await makeDue(prefix, n);
        const early = await pass({ prefix, issuer: 'fail' });
        expect(early.summary!.outcomes).toEqual({ backing_off: 1 });
        expect(early.issued).toEqual([]);
        expect((await indexOf(prefix, n)).due).toBe(Number(await store.hget(stateKey, 'next_attempt')));
      }
      if (attempt > 1) {
        // The backoff is over.
        await store.hset(stateKey, 'next_attempt', String(nowS() - 1));
        await makeDue(prefix, n);
      }
      const before = nowS();
      const reply = await pass({ prefix, issuer: 'fail' });
      const after = nowS();
      expect(reply.summary!.outcomes).toEqual({ failed: 1 });
      const idx = await indexOf(prefix, n);
      expect(idx.state).toMatchObject({ attempts: String(attempt), last_error: 'stand-in issuer failure' });
      const next = Number(idx.state.next_attempt);
      expect(next).toBeGreaterThanOrEqual(before + backoff[attempt - 1]);
      expect(next).toBeLessThanOrEqual(after + backoff[attempt - 1] + 1);
      expect(idx.due).toBe(next);
      // The certificate and its schedule by lifetime stay as they were.
      expect(idx.renewAt).toBe(schedule(cert).renewAt);
    }
    // A domain check that does not answer is a failure too.
    domainCheck.mode = 'error';
    await store.hset(stateKey, 'next_attempt', String(nowS() - 1));
    await makeDue(prefix, n);
    const broken = await pass({ prefix, issuer: 'ok' });
    expect(broken.summary!.outcomes).toEqual({ failed: 1 });
    expect(broken.issued).toEqual([]);
    expect((await indexOf(prefix, n)).state).toMatchObject({ attempts: '6', last_error: 'the domain check did not answer' });
    domainCheck.mode = 'normal';

    await store.hset(stateKey, 'next_attempt', String(nowS() - 1));
    await makeDue(prefix, n);
    const ok = await pass({ prefix, issuer: 'ok' });
    expect(ok.summary!.outcomes).toEqual({ renewed: 1 });
    expect((await indexOf(prefix, n)).state.attempts).toBeUndefined();
  });

  test('a name the domain check no longer allows (404) is not renewed, and removed once its certificate has expired', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    // Already expired, and one that expires in a few seconds; both past renew-at.
    const expired = ca.issue(t - 10 * DAY, t - DAY);
    const expiring = ca.issue(t - 100, t + 6);
    const [gone, soon] = [name('denied-expired'), name('denied-expiring')];
    await tsWrite(prefix, gone, expired);
    await tsWrite(prefix, soon, expiring);

    const before = nowS();
    const first = await pass({ prefix, issuer: 'ok' });
    const after = nowS();
    expect(first.summary!.outcomes).toEqual({ not_allowed: 2 });
    expect(first.issued).toEqual([]);
    for (const [n, cert] of [[gone, expired], [soon, expiring]] as const) {
      const idx = await indexOf(prefix, n);
      expect(idx.state).toMatchObject({ not_allowed: '1' });
      // Looked at again at its expiry, or (already expired) at the next pass: never in the past.
      expect(idx.due).toBeGreaterThanOrEqual(Math.max(cert.notAfter, before + 1));
      expect(idx.due).toBeLessThanOrEqual(Math.max(cert.notAfter, after + 2));
      expect(await store.exists(`${prefix}:${n}:latest`)).toBe(1);
    }

    // The next pass: the expired one is removed (entry, index, state; a change in the feed), the other waits.
    const seqBefore = await seq(prefix);
    await makeDue(prefix, gone); // its next look has come
    const second = await pass({ prefix, issuer: 'ok' });
    expect(second.summary!.outcomes).toEqual({ removed: 1 });
    expect(await store.exists(`${prefix}:${gone}:latest`)).toBe(0);
    expect(await indexOf(prefix, gone)).toEqual({ due: null, renewAt: null, expiry: null, alarmAt: null, state: {} });
    expect(await seq(prefix)).toBe(seqBefore + 1);
    expect(await store.exists(`${prefix}:${soon}:latest`)).toBe(1);
    // Asked when it was due for renewal, and again before its removal (a 404 may be undone).
    expect(domainCheck.requestsFor(gone)).toBe(2);

    await waitFor('the short certificate to expire', () => Date.now() / 1000 > expiring.notAfter + 1, 10000);
    const third = await pass({ prefix, issuer: 'ok' });
    expect(third.summary!.outcomes).toEqual({ removed: 1 });
    expect(await store.exists(`${prefix}:${soon}:latest`)).toBe(0);
    expect(third.issued).toEqual([]);
  });

  test('a name the domain check allows again before expiry is indexed afresh and renewed on its schedule (stand-in issuer)', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const n = name('readmitted');
    await tsWrite(prefix, n, cert);
    expect((await pass({ prefix, issuer: 'ok' })).summary!.outcomes).toEqual({ not_allowed: 1 });
    const idx = await indexOf(prefix, n);
    expect(idx.state).toMatchObject({ not_allowed: '1' });
    // Asked again within a day, not only at expiry.
    expect(idx.due).toBeLessThanOrEqual(nowS() + DAY + 1);
    expect([idx.renewAt, idx.alarmAt]).toEqual([null, null]);
    domainCheck.allowed.add(n);
    await makeDue(prefix, n);
    expect((await pass({ prefix, issuer: 'ok' })).summary!.outcomes).toEqual({ indexed: 1 });
    const again = await indexOf(prefix, n);
    expect(again.state.not_allowed).toBeUndefined();
    expect(again.renewAt).toBe(schedule(cert).renewAt);
    expect(again.alarmAt).not.toBeNull();
    expect((await pass({ prefix, issuer: 'ok' })).summary!.outcomes).toEqual({ renewed: 1 });
  });

  test('stand-in issuer: a mass expiry of 500 names stays within the hourly budget, earliest first; the rest wait in line without holding back other work', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    // Ten groups of 50, renew-at an hour apart (the earliest 10 days ago); all allowed.
    const groups = Array.from({ length: 10 }, (_, g) => ca.issue(t - 70 * DAY - (10 - g) * HOUR, t + 20 * DAY - (10 - g) * HOUR));
    const names: string[] = [];
    const renewAtOf = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const n = allowed(`mass-${i}`);
      const cert = groups[i % 10];
      await tsWrite(prefix, n, cert);
      names.push(n);
      renewAtOf.set(n, schedule(cert).renewAt);
    }
    const perHour = 30;
    const passInterval = 600; // a sixth of an hour: 5 renewals a pass
    const pace = Math.ceil(perHour * passInterval / 3600);
    const renewed: string[] = [];
    for (let i = 0; i < 8; i++) {
      const reply = await pass({ prefix, issuer: 'ok', renewals_per_hour: perHour, pass_interval: passInterval, batch: 50 });
      expect(reply.err).toBeNull();
      expect(reply.summary!.stopped).toBeUndefined();
      expect(reply.issued.length).toBeLessThanOrEqual(pace);
      // Every other name was looked at and left in line, the domain check not asked for it.
      expect(reply.summary!.outcomes.deferred).toBe(500 - renewed.length - reply.issued.length);
      expect(reply.summary!.outcomes.renewed ?? 0).toBe(reply.issued.length);
      renewed.push(...reply.issued.map((c) => c.name));
    }
    expect(renewed).toHaveLength(perHour);
    expect(new Set(renewed).size).toBe(perHour);
    expect(await store.zcard(`${prefix}:edge:renewal-orders`)).toBe(perHour);
    // The rest are still due; what was renewed had the earliest renew-at.
    const due = await store.zrangebyscore(`${prefix}:${INDEX.due}`, '-inf', nowS());
    expect(due).toHaveLength(500 - perHour);
    expect(due.some((n) => renewed.includes(n))).toBe(false);
    const latestRenewed = Math.max(...renewed.map((n) => renewAtOf.get(n)!));
    const earliestLeft = Math.min(...due.map((n) => renewAtOf.get(n)!));
    expect(latestRenewed).toBeLessThanOrEqual(earliestLeft);
    expect(renewed.every((n) => renewAtOf.get(n) === schedule(groups[0]).renewAt)).toBe(true);

    // Behind the 470 deferred names, one due only for a look is still reached in the same pass.
    const later = ca.issue(t - 10 * DAY, t + 80 * DAY);
    const look = allowed('behind-the-line');
    await tsWrite(prefix, look, later);
    await store.zadd(`${prefix}:${INDEX.due}`, 'XX', nowS() - 1, look);
    const behind = await pass({ prefix, issuer: 'ok', renewals_per_hour: perHour, pass_interval: passInterval, batch: 50 });
    expect(behind.summary!.outcomes).toEqual({ deferred: 500 - perHour, scheduled: 1 });
    expect((await indexOf(prefix, look)).due).toBe(schedule(later).renewAt);
  }, 120000);

  test('while the ACME account cools off, a pass does nothing', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const n = allowed('cooloff');
    await tsWrite(prefix, n, ca.issue(t - 70 * DAY, t + 20 * DAY));
    await store.set(`${prefix}:harness-unindexed:latest`, '{}'); // would be backfilled
    await store.set(`${prefix}:edge:acme-account:cooloff`, '1', 'EX', 60);
    const before = await indexOf(prefix, n);
    const reply = await pass({ prefix, issuer: 'ok' });
    // Nothing done, but the gauges still reported.
    expect(reply.summary).toEqual({ outcomes: {}, stopped: 'the ACME account is rate-limited', gauges: { past_renew_at: 1, near_expiry: 0, due: 1 } });
    expect(reply.issued).toEqual([]);
    expect(reply.reads).toEqual({});
    expect(domainCheck.requestsFor(n)).toBe(0);
    expect(await indexOf(prefix, n)).toEqual(before);
    expect(await store.exists(`${prefix}:edge:renew-index-backfilled`)).toBe(0);

    await store.del(`${prefix}:edge:acme-account:cooloff`);
    const after = await pass({ prefix, issuer: 'ok' });
    expect(after.summary!.outcomes.renewed).toBe(1);
  });

  test('backfill: certificates stored before the index existed are indexed by the first pass, once', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const certs = [ca.issue(t - 10 * DAY, t + 80 * DAY), ca.issue(t - 70 * DAY, t + 20 * DAY)];
    const [fine, overdue, unreadable] = [allowed('old-fine'), allowed('old-overdue'), allowed('old-unreadable')];
    // Written as before the index: a plain SET, no feed entry, no index.
    await store.set(`${prefix}:${fine}:latest`, certs[0].entry);
    await store.set(`${prefix}:${overdue}:latest`, certs[1].entry);
    await store.set(`${prefix}:${unreadable}:latest`, '{"fullchain_pem":"garbage"}');
    // One already indexed keeps its schedule.
    const indexed = allowed('already-indexed');
    await tsWrite(prefix, indexed, certs[0]);
    const indexedBefore = await indexOf(prefix, indexed);
    const seqBefore = await seq(prefix);

    const before = nowS();
    const first = await pass({ prefix, issuer: 'ok' });
    expect(first.summary!.outcomes).toEqual({ indexed: 3 });
    expect(await store.get(`${prefix}:edge:renew-index-backfilled`)).toMatch(/^\d+$/);
    expect(await seq(prefix)).toBe(seqBefore); // the same values: no feed entries
    for (const [n, cert] of [[fine, certs[0]], [overdue, certs[1]]] as const) {
      const sc = schedule(cert);
      expect(await indexOf(prefix, n)).toMatchObject({
        renewAt: sc.renewAt, expiry: cert.notAfter, alarmAt: sc.alarmAt,
        state: { not_before: String(cert.notBefore), not_after: String(cert.notAfter), renew_at: String(sc.renewAt) },
      });
    }
    expect((await indexOf(prefix, fine)).due).toBeGreaterThanOrEqual(before + 12 * HOUR);
    expect((await indexOf(prefix, overdue)).due).toBe(schedule(certs[1]).renewAt);
    // Unreadable: looked at again in a day.
    expect((await indexOf(prefix, unreadable)).due).toBeGreaterThanOrEqual(before + DAY);
    expect(await indexOf(prefix, indexed)).toEqual(indexedBefore);

    // The next pass renews the overdue one; a certificate stored the old way now is not backfilled again.
    const late = name('stored-late');
    await store.set(`${prefix}:${late}:latest`, certs[1].entry);
    const second = await pass({ prefix, issuer: 'ok' });
    expect(second.summary!.outcomes).toEqual({ renewed: 1 });
    expect(second.issued.map((c) => c.name)).toEqual([overdue]);
    expect(await indexOf(prefix, late)).toEqual({ due: null, renewAt: null, expiry: null, alarmAt: null, state: {} });
  });

  test('stand-in issuer: an order that puts the account into its cool-off stops the pass; the other names keep their schedule', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const ns = [allowed('limited-a'), allowed('limited-b'), allowed('limited-c')];
    for (const n of ns) await tsWrite(prefix, n, cert);
    const reply = await pass({ prefix, issuer: 'ratelimit' });
    expect(reply.summary!.stopped).toBe('the ACME account is rate-limited');
    expect(reply.summary!.outcomes).toEqual({ failed: 1 });
    expect(reply.issued).toHaveLength(1);
    // One order counted against the budget, one name backed off; the others untouched, still due.
    expect(await store.zcard(`${prefix}:edge:renewal-orders`)).toBe(1);
    const rest = ns.filter((n) => n !== reply.issued[0].name);
    for (const n of rest) {
      expect((await indexOf(prefix, n)).state.attempts).toBeUndefined();
      expect((await indexOf(prefix, n)).due).toBe(schedule(cert).renewAt);
    }
  });

  test('stand-in issuer: a name whose order is running is not ordered again by a second renewer meanwhile', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const n = allowed('ordering');
    await tsWrite(prefix, n, ca.issue(t - 70 * DAY, t + 20 * DAY));
    // The first renewer's order takes 2 s; the second (the lease ran out, another instance took
    // it over) passes meanwhile.
    const slow = pass({ prefix, issuer: 'slow' });
    await waitFor('the first order to start', async () => (await store.llen(`${prefix}:harness:ordering`)) === 1, SLACK_MS);
    const meanwhile = await pass({ prefix, issuer: 'ok' });
    const first = await slow;
    expect(first.issued).toEqual([{ name: n, replaces: null }]);
    expect(first.summary!.outcomes).toEqual({ renewed: 1 });
    expect(meanwhile.issued).toEqual([]);
    expect(meanwhile.summary!.outcomes).toEqual({});
    expect(await store.zcard(`${prefix}:edge:renewal-orders`)).toBe(1);
  });

  test('a backfill that fails part way runs again at the next pass', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const cert = ca.issue(t - 10 * DAY, t + 80 * DAY);
    const n = name('backfill-retried');
    await store.set(`${prefix}:${n}:latest`, cert.entry);
    // The index cannot be written (here: its key holds a string).
    await store.set(`${prefix}:${INDEX.due}`, 'in the way');
    const failedPass = await pass({ prefix, issuer: 'ok' });
    expect(failedPass.summary).toBeNull();
    expect(failedPass.err).toMatch(/WRONGTYPE/);
    expect(await store.exists(`${prefix}:edge:renew-index-backfilled`)).toBe(0);
    await store.del(`${prefix}:${INDEX.due}`);
    const next = await pass({ prefix, issuer: 'ok' });
    expect(next.summary!.outcomes).toEqual({ indexed: 1 });
    expect((await indexOf(prefix, n)).state.not_after).toBe(String(cert.notAfter));
  });

  test('an unindexed entry that cannot be read stays in the index, looked at again later; the pass goes on', async () => {
    const prefix = freshPrefix();
    const t = nowS();
    const [broken, fine] = [name('unreadable-entry'), name('readable-entry')];
    // GET fails on it (a hash where a string should be), as it would on a store error.
    await store.hset(`${prefix}:${broken}:latest`, 'not', 'a string');
    const cert = ca.issue(t - 10 * DAY, t + 80 * DAY);
    await store.set(`${prefix}:${fine}:latest`, cert.entry);
    const before = nowS();
    const reply = await pass({ prefix, issuer: 'ok' });
    expect(reply.summary!.outcomes).toEqual({ failed: 1, indexed: 1 });
    const due = (await indexOf(prefix, broken)).due;
    expect(due).toBeGreaterThanOrEqual(before + 60);
    expect(due).toBeLessThanOrEqual(nowS() + 61);
    expect((await indexOf(prefix, fine)).state.not_after).toBe(String(cert.notAfter));
  });

  test('a pass stops when the lease is lost', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    const cert = ca.issue(t - 70 * DAY, t + 20 * DAY);
    const ns = [allowed('lease-a'), allowed('lease-b'), allowed('lease-c')];
    for (const n of ns) await tsWrite(prefix, n, cert);
    // The lease is lost during the first order.
    const reply = await pass({ prefix, issuer: 'ok', lease_lost_after_orders: 1 });
    expect(reply.summary!.stopped).toBe('lease lost');
    expect(reply.issued).toHaveLength(1);
    expect(await store.zcount(`${prefix}:${INDEX.due}`, '-inf', nowS())).toBe(2);
  });
});

describe('the renewer\'s gauges in /metrics', () => {
  test('after a pass: certificates past renew-at, near expiry, the soonest expiry and what is due, as gauges', async () => {
    const prefix = freshPrefix();
    await freshCertFor(prefix);
    const t = nowS();
    // Near expiry (6 days, half a day left) and past renew-at; its renewal fails (stand-in issuer).
    const near = ca.issue(t - 5 * DAY - 12 * HOUR, t + 12 * HOUR);
    const fine = ca.issue(t - DAY, t + 89 * DAY);
    const [nearName, fineName] = [allowed('near-expiry'), allowed('fine')];
    await tsWrite(prefix, nearName, near);
    await tsWrite(prefix, fineName, fine);
    const mark = markLog(nginx!.errorLogFile);
    const reply = await pass({ prefix, issuer: 'fail' });
    expect(reply.summary!.outcomes).toEqual({ failed: 1 });
    expect(reply.summary!.gauges).toEqual({ past_renew_at: 1, near_expiry: 1, due: 0 });

    const { text, values } = await metricsOf(port);
    for (const gauge of ['edge_certificates_past_renew_at', 'edge_certificates_near_expiry', 'edge_certificate_soonest_expiry_seconds', 'edge_renewal_due']) {
      expect(text).toMatch(new RegExp(`^# TYPE ${gauge} gauge$`, 'm'));
      expect(text).toMatch(new RegExp(`^# HELP ${gauge} \\S`, 'm'));
    }
    expect(text).toMatch(/^# TYPE edge_renewals_total counter$/m);
    expect(values.get('edge_certificates_past_renew_at')).toBe(1);
    expect(values.get('edge_certificates_near_expiry')).toBe(1);
    expect(values.get('edge_renewal_due')).toBe(0);
    const soonest = values.get('edge_certificate_soonest_expiry_seconds')!;
    expect(soonest).toBeGreaterThan(12 * HOUR - 60);
    expect(soonest).toBeLessThanOrEqual(12 * HOUR);
    expect(values.get('edge_renewals_total{outcome="failed"}')).toBeGreaterThanOrEqual(1);
    // The log line the CloudWatch alarm counts.
    await waitFor('the near-expiry warning', () => /edge: renewal: 1 certificates near expiry \(soonest: near-expiry-/.test(logSince(mark)), SLACK_MS);
  });
});
