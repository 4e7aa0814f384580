// The renewal bench's store: a real Redis filled with an environment's certificate entries and
// their renewal index (as edge.store.record_cert_change would have written them), and the
// SLOWLOG around each measured step (bench/renewal.ts).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Redis from 'ioredis';

/** The index's keys (lua/edge/store/cert_changes.lua INDEX, state_key; lua/edge/renewal/renewer.lua). */
export const INDEX = { due: 'edge:renew-due', renewAt: 'edge:renew-at', expiry: 'edge:cert-expiry', alarmAt: 'edge:alarm-at' } as const;
export const stateKey = (name: string) => `edge:renewal:${name}`;
/** Set once the environment's pre-index entries were indexed: without it, the pass lists every entry first. */
export const BACKFILLED_KEY = 'edge:renew-index-backfilled';

/** The script's rules (record_cert_change.lua): renew at 2/3 of the lifetime, first look after 12 h, alarm 7 days before expiry. */
const RENEW_AT_FRACTION = 2 / 3;
const FIRST_CHECK_SECONDS = 43200;
const ALARM_SECONDS = 7 * 86400;
const ALARM_FRACTION = 0.1;
const LIFETIME_SECONDS = 90 * 86400;
const DAY = 86400;

/** The bench's own client name: its commands (SLOWLOG RESET, fills) are left out of the figures. */
export const BENCH_CLIENT_NAME = 'renewal-bench';

/** One name's index entry, as the script writes it. */
export interface IndexEntry {
  readonly name: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly renewAt: number;
  readonly due: number;
}

/** What the store holds. */
export interface FilledStore {
  readonly names: number;
  /** The due names and their index entries (to put them back after each pass). */
  readonly due: IndexEntry[];
  /** Bytes of each (identical) "<prefix>:<name>:latest" value. */
  readonly valueBytes: number;
  readonly keys: number;
  readonly usedMemory: string;
  readonly fillSeconds: number;
}

export function benchName(i: number): string {
  return `site-${String(i).padStart(6, '0')}.bench-customer.test`;
}

/**
 * lua-resty-auto-ssl's certificate entry (storage:set_cert: fullchain_pem, privkey_pem, cert_pem,
 * expiry), for an ECDSA P-256 leaf with its authority key identifier (ARI needs it) under an RSA
 * 2048 intermediate, as a Let's Encrypt chain; the same for every name.
 */
export function certificateEntry(dir: string): string {
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const f = (n: string) => path.join(dir, n);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1825', '-subj', '/C=US/O=Bench CA/CN=Bench R11 (throwaway)',
    '-addext', 'basicConstraints=critical,CA:true,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=site-000000.bench-customer.test',
    '-keyout', f('leaf.key'), '-out', f('leaf.csr')]);
  writeFileSync(f('leaf.ext'), [
    'subjectAltName=DNS:site-000000.bench-customer.test', 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature',
    'basicConstraints=critical,CA:false', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always',
    'authorityInfoAccess=caIssuers;URI:http://r11.i.lencr.org/', 'certificatePolicies=2.23.140.1.2.1', '',
  ].join('\n'));
  openssl(['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-set_serial', '0x' + 'a3'.repeat(18),
    '-days', '90', '-extfile', f('leaf.ext'), '-out', f('leaf.pem')]);
  const cert = readFileSync(f('leaf.pem'), 'utf8');
  const chain = cert + readFileSync(f('ca.pem'), 'utf8');
  return JSON.stringify({
    fullchain_pem: chain, privkey_pem: readFileSync(f('leaf.key'), 'utf8'), cert_pem: cert,
    expiry: Math.floor(Date.now() / 1000) + LIFETIME_SECONDS,
  });
}

export function connect(port: number): Promise<Redis> {
  const redis = new Redis({
    port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, disconnectTimeout: 0,
    connectionName: BENCH_CLIENT_NAME,
  });
  return redis.connect().then(() => redis);
}

// A deterministic spread (the same store every run).
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Index entries of `total` names at time now: every `dueEvery`-th name is due for a check only
 * (issued 12 h to 13 h ago, its first look at 12 h has come, its renew-at weeks ahead), the
 * others not due (issued 1 to 50 days ago and looked at by an earlier pass: due at their renew-at;
 * or issued in the last 11 h: due at their first look).
 */
export function indexEntries(total: number, dueEvery: number, now: number): IndexEntry[] {
  const rnd = random(20261202);
  const entries: IndexEntry[] = [];
  for (let i = 0; i < total; i++) {
    const name = benchName(i);
    const isDue = i % dueEvery === 0;
    const recent = !isDue && rnd() < 0.05;
    const notBefore = Math.floor(isDue ? now - FIRST_CHECK_SECONDS - rnd() * 3600
      : recent ? now - rnd() * 11 * 3600 : now - DAY - rnd() * 49 * DAY);
    const notAfter = notBefore + LIFETIME_SECONDS;
    const renewAt = Math.floor(notBefore + LIFETIME_SECONDS * RENEW_AT_FRACTION);
    const firstLook = notBefore + FIRST_CHECK_SECONDS;
    const due = isDue || recent ? Math.min(renewAt, firstLook) : renewAt;
    entries.push({ name, notBefore, notAfter, renewAt, due });
  }
  return entries;
}

/** Fills the store: entries, their index, the backfill mark. Pipelined, 1000 names a round trip. */
export async function fillStore(redis: Redis, prefix: string, entries: IndexEntry[], value: string, now: number): Promise<FilledStore> {
  const started = Date.now();
  const k = (key: string) => `${prefix}:${key}`;
  await redis.call('FLUSHALL');
  const CHUNK = 1000;
  for (let from = 0; from < entries.length; from += CHUNK) {
    const chunk = entries.slice(from, from + CHUNK);
    const p = redis.pipeline();
    for (const e of chunk) {
      p.set(k(`${e.name}:latest`), value);
      p.hset(k(stateKey(e.name)), 'not_before', e.notBefore, 'not_after', e.notAfter, 'renew_at', e.renewAt);
    }
    const alarm = (e: IndexEntry) => e.notAfter - Math.min(ALARM_SECONDS, Math.floor((e.notAfter - e.notBefore) * ALARM_FRACTION));
    p.zadd(k(INDEX.due), ...chunk.flatMap((e) => [e.due, e.name]));
    p.zadd(k(INDEX.renewAt), ...chunk.flatMap((e) => [e.renewAt, e.name]));
    p.zadd(k(INDEX.expiry), ...chunk.flatMap((e) => [e.notAfter, e.name]));
    p.zadd(k(INDEX.alarmAt), ...chunk.flatMap((e) => [alarm(e), e.name]));
    const results = await p.exec();
    const failed = (results ?? []).find(([err]) => err);
    if (failed) throw new Error(`filling the store: ${failed[0]!.message}`);
  }
  await redis.set(k(BACKFILLED_KEY), String(now));
  const dueNow = await redis.zcount(k(INDEX.due), '-inf', String(now));
  const due = entries.filter((e) => e.due <= now);
  if (dueNow !== due.length) throw new Error(`the store has ${dueNow} names due, expected ${due.length}`);
  const memory = /used_memory_human:(\S+)/.exec(await redis.info('memory'))?.[1] ?? '?';
  return {
    names: entries.length, due, valueBytes: Buffer.byteLength(value), keys: await redis.dbsize(), usedMemory: memory,
    fillSeconds: (Date.now() - started) / 1000,
  };
}

/** Makes the due names due again (the pass moved them to their renew-at). */
export async function makeDueAgain(redis: Redis, prefix: string, due: IndexEntry[]): Promise<void> {
  await redis.zadd(`${prefix}:${INDEX.due}`, 'XX', ...due.flatMap((e) => [e.due, e.name]));
}

/** Names whose due score is not their renew-at after a pass (a check only reschedules to renew-at). */
export async function notRescheduled(redis: Redis, prefix: string, due: IndexEntry[]): Promise<string[]> {
  const scores = await redis.call('ZMSCORE', `${prefix}:${INDEX.due}`, ...due.map((e) => e.name)) as Array<string | null>;
  return due.filter((e, i) => Number(scores[i]) !== e.renewAt).map((e) => e.name);
}

/** One SLOWLOG entry: a command as Redis ran it. */
export interface LoggedCommand {
  readonly us: number;
  readonly command: string;
  /** The command with its first arguments, as SLOWLOG keeps them (shortened). */
  readonly text: string;
}

export const SLOWLOG_MAX_LEN = 200000;

/** Every command from now on goes to the SLOWLOG (up to SLOWLOG_MAX_LEN). */
export async function logEveryCommand(redis: Redis): Promise<void> {
  await redis.call('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
  await redis.call('CONFIG', 'SET', 'slowlog-max-len', String(SLOWLOG_MAX_LEN));
}

export async function resetSlowlog(redis: Redis): Promise<void> {
  await redis.call('SLOWLOG', 'RESET');
}

/** The commands logged since the last reset, oldest first, except the bench's own. */
export async function loggedCommands(redis: Redis): Promise<LoggedCommand[]> {
  const entries = await redis.call('SLOWLOG', 'GET', '-1') as Array<[number, number, number, Buffer[] | string[], string, string]>;
  if (entries.length >= SLOWLOG_MAX_LEN) throw new Error(`the SLOWLOG is full (${entries.length} entries): raise SLOWLOG_MAX_LEN`);
  return entries
    .filter((e) => String(e[5] ?? '') !== BENCH_CLIENT_NAME)
    .reverse()
    .map((e) => {
      const args = e[3].map(String);
      const text = args.slice(0, 4).map((a) => (a.length > 60 ? `${a.slice(0, 57)}...` : a)).join(' ') + (args.length > 4 ? ' ...' : '');
      return { us: Number(e[2]), command: (args[0] ?? '?').toUpperCase(), text };
    });
}
