// The printed tables of npm run bench.
import { StoredCertificate } from './edge-stack';
import { HandshakeReport, IN_FLIGHT } from './handshake';
import { Attempt } from './first-request';
import {
  BURST_INSTANCES, BURST_NAMES, BURST_PER_NAME, CHILD_SAMPLE_MS, ISSUANCE_ENVIRONMENT, ISSUANCE_NAMES, IssuanceReport, SideIssuance,
} from './issuance';
import { ChildrenSeen, Placement, RoundResult, ratioSpread, Spread, spread } from './measure';
import { ORIGIN_BODY_BYTES, ORIGIN_NAME, ProxyReport, WRK_CONNECTIONS, WRK_THREADS } from './proxy';

function num(x: number, digits: number): string {
  if (!Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median [min–max]" */
export function fmt(s: Spread, digits = 0): string {
  return `${num(s.median, digits)} [${num(s.min, digits)}–${num(s.max, digits)}]`;
}

export function fmtRatio(s: Spread): string {
  return `×${num(s.median, 2)} [${num(s.min, 2)}–${num(s.max, 2)}]`;
}

function pct(s: Spread): string {
  return `${num(s.median * 100, 0)}% [${num(s.min * 100, 0)}–${num(s.max * 100, 0)}]`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, c) => (cell ?? '').padEnd(widths[c])).join('   ').trimEnd()}`).join('\n');
}

const of = (results: RoundResult[], figure: string) => spread(results.map((r) => r[figure] as number));
const sum = (results: RoundResult[], figure: string) => results.reduce((total, r) => total + ((r[figure] as number) || 0), 0);

export function handshakeTable(r: HandshakeReport): string {
  const rows = [
    ['', 'µs CPU / handshake', 'handshakes/s', 'server CPU busy'],
    ['edge (as rendered)', fmt(of(r.edge, 'cpuUsPerOp')), fmt(of(r.edge, 'rate')), pct(of(r.edge, 'busy'))],
    ['plain nginx', fmt(of(r.plain, 'cpuUsPerOp')), fmt(of(r.plain, 'rate')), pct(of(r.plain, 'busy'))],
    ['ratio edge / plain', fmtRatio(ratioSpread(r.edge, r.plain, (x) => x.cpuUsPerOp)), fmtRatio(ratioSpread(r.edge, r.plain, (x) => x.rate)), ''],
  ];
  const edgeHandshakes = Object.values(r.edgeSources).reduce((a, b) => a + b, 0);
  const sources = Object.entries(r.edgeSources).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return [
    `Handshake, cache hit: full TLS 1.3 handshakes with SNI, no resumption, a new connection each, ${IN_FLIGHT} in flight`
      + (r.proxyProtocol ? ', after a PROXY v1 header (the edge listens with proxy_protocol; the plain nginx too)' : ''),
    table(rows),
    `  kernel share of the server CPU: edge ${pct(of(r.edge, 'kernelShare'))}, plain ${pct(of(r.plain, 'kernelShare'))}`,
    `  client: ${r.client.description}; client errors: edge ${sum(r.edge, 'errors')}, plain ${sum(r.plain, 'errors')}`,
    `  the edge's /metrics over the run (warm-up included): ${edgeHandshakes} handshakes by certificate source: ${sources}`,
  ].join('\n');
}

export function proxyTable(r: ProxyReport): string {
  const rows = [
    ['', 'req/s', 'p50 ms', 'p99 ms', 'µs CPU / request', 'origin connections / 1000 req'],
    ['edge (as rendered)', fmt(of(r.edge, 'rate')), fmt(of(r.edge, 'p50Ms'), 2), fmt(of(r.edge, 'p99Ms'), 2),
      fmt(of(r.edge, 'cpuUsPerOp')), fmt(of(r.edge, 'originConnectionsPer1000'), 1)],
    ['plain nginx (upstream keepalive 32)', fmt(of(r.plain, 'rate')), fmt(of(r.plain, 'p50Ms'), 2), fmt(of(r.plain, 'p99Ms'), 2),
      fmt(of(r.plain, 'cpuUsPerOp')), fmt(of(r.plain, 'originConnectionsPer1000'), 1)],
    ['ratio edge / plain', '', fmtRatio(ratioSpread(r.edge, r.plain, (x) => x.p50Ms)), '',
      fmtRatio(ratioSpread(r.edge, r.plain, (x) => x.cpuUsPerOp)), ''],
  ];
  return [
    `Proxied requests: wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} --latency (keep-alive) over TLS, `
      + `to an origin nginx answering ${ORIGIN_BODY_BYTES} bytes over TLS (on the client's CPU)`,
    table(rows),
    `  server CPU busy: edge ${pct(of(r.edge, 'busy'))}, plain ${pct(of(r.plain, 'busy'))}; `
      + `kernel share of it: edge ${pct(of(r.edge, 'kernelShare'))}, plain ${pct(of(r.plain, 'kernelShare'))}`,
    `  errors (non-2xx + socket): edge ${sum(r.edge, 'errors')}, plain ${sum(r.plain, 'errors')}`,
    `  origin: the edge's ${r.edgeOriginUrl} (resolved through pebble-challtestsrv); the plain nginx's upstream 127.0.0.1 with `
      + `proxy_ssl_name ${ORIGIN_NAME}; both verify its certificate`,
    ...(r.wrk.note ? [`  NOTE: ${r.wrk.note}`] : []),
  ].join('\n');
}

export function certificateLine(c: StoredCertificate, prefix: string): string {
  return `certificate: ${c.name}, ${c.keyType}, issued by pebble (${c.issuer}) through the edge's first handshake in `
    + `${num(c.issuedInSeconds, 1)} s; the plain nginx serves the same chain and key, read from Redis ${prefix}:${c.name}:latest`;
}

export function placementLines(samples: Placement[]): string {
  const seen = new Set<string>();
  const lines = samples.filter((p) => {
    const key = `${p.label} ${p.pid}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }).map((p) => `${p.label} (pid ${p.pid}): Cpus_allowed_list ${p.allowedCpus}, last ran on CPU ${Number.isFinite(p.lastCpu) ? p.lastCpu : '?'}`);
  return `pinning, sampled during each side's first load:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/** Nearest-rank percentile (p95 of 10 values is the largest). */
function percentile(values: number[], p: number): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)] : NaN;
}

function childrenLine(seen: ChildrenSeen[], samples: number, seconds: number): string {
  const parts = seen.map((c) => {
    const names = Object.entries(c.names).map(([n, k]) => `${n} in ${k}`).join(', ');
    return `${c.label} (pid ${c.pid}) max ${c.max}${names ? ` (${names} samples)` : ''}`;
  });
  return `child processes, a /proc scan every ${CHILD_SAMPLE_MS} ms + its own time (${samples} samples in ${num(seconds, 1)} s, `
    + `one per ${num((seconds * 1000) / Math.max(1, samples), 0)} ms): ${parts.join('; ')}`;
}

function failures(attempts: Attempt[]): string {
  const counts = new Map<string, number>();
  for (const a of attempts.filter((x) => !x.ownName || x.status !== 200)) {
    const key = (a.error ?? 'failed').slice(0, 160);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([e, n]) => `${n}× ${e}`).join('; ');
}

export function issuanceTable(r: IssuanceReport): string {
  const ms = (x: number) => num(x, 0);
  const row = (label: string, s: SideIssuance) => {
    const ttfb = s.runs.map((a) => a.firstByteMs);
    const t = spread(ttfb);
    return [label, ms(t.median), ms(percentile(ttfb, 95)), `${ms(t.min)}–${ms(t.max)}`, ms(spread(s.runs.map((a) => a.handshakeMs)).median),
      `${ms(s.firstEver.firstByteMs)} (${s.accountsFirstEver} account${s.accountsFirstEver === 1 ? '' : 's'} registered)`];
  };
  const ratio = spread(r.edge.runs.map((a) => a.firstByteMs)).median / spread(r.caddy.runs.map((a) => a.firstByteMs)).median;
  const ok = (s: SideIssuance) => `${s.runs.filter((a) => a.ownName && a.status === 200).length}/${s.runs.length}`
    + `${s.firstEver.ownName && s.firstEver.status === 200 ? '' : ' (first ever FAILED)'}`;
  const waits = Object.entries(r.caddyRateLimiterWaits).map(([name, w]) => `${name} for ${ms(w)} ms`);
  const b = r.burst;
  const total = b.attempts.length;
  const own = b.attempts.filter((a) => a.ownName).length;
  const served = new Set(b.attempts.filter((a) => a.ownName).map((a) => a.serial)).size;
  const lastOk = Math.max(...b.attempts.filter((a) => a.ownName).map((a) => a.doneMs ?? NaN));
  const fail = [['edge', r.edge], ['Caddy', r.caddy]] as const;
  const failed = fail.map(([label, s]) => [label, failures([s.firstEver, ...s.runs])]).filter(([, f]) => f).map(([label, f]) => `${label}: ${f}`);
  return [
    `First issuance on pebble (PEBBLE_VA_NOSLEEP=1, one pebble + challtestsrv per side, http-01 only, ECDSA P-256): `
      + `${ISSUANCE_NAMES} new names per side, one at a time, the sides alternating; TTFB = TCP connect → first byte of the `
      + 'response to GET / (SNI; the edge after a PROXY v1 header), ms',
    table([
      ['', 'TTFB median', 'p95 (max of 10)', 'range', 'TLS done, median', 'first ever: TTFB'],
      row('edge (our ACME client)', r.edge),
      row(`Caddy ${r.caddyVersion} on-demand`, r.caddy),
      ['ratio edge / Caddy (medians)', `×${num(ratio, 2)}`, '', '', '', ''],
    ]),
    `  own-name certificate + HTTP 200: edge ${ok(r.edge)}, Caddy ${ok(r.caddy)}; pebble orders during the ${ISSUANCE_NAMES}: `
      + `edge ${r.edge.orders}, Caddy ${r.caddy.orders}; new accounts after the first: edge ${r.edge.accountsAfter}, Caddy ${r.caddy.accountsAfter}`,
    `  Caddy's internal rate limiter (certmagic: 10 orders per 10 s per account) held ${waits.length ? waits.join(', ') : 'none of its orders'}`,
    `  first ever: the edge in a new environment "${ISSUANCE_ENVIRONMENT}" (no account in Redis), Caddy with an empty storage directory; `
      + 'the edge proxies GET / to a Node origin (one TLS connection more), Caddy answers it itself (respond "ok")',
    `  ${childrenLine(r.children, r.samples, r.sampledSeconds)}`,
    ...(failed.length ? [`  failures: ${failed.join('; ')}`] : []),
    '',
    `Burst: ${BURST_NAMES} new names × ${BURST_PER_NAME} concurrent first requests (TLS + GET /), spread over ${BURST_INSTANCES} edge `
      + `instances (1 worker each, both on CPU 0), ${total} at once`,
    `  own-name certificates: ${own}/${total} (HTTP 200: ${b.attempts.filter((a) => a.status === 200).length}); last finished after `
      + `${num(b.lastMs / 1000, 2)} s (last with its certificate: ${num(lastOk / 1000, 2)} s)`,
    `  pebble: ${b.orders} orders, ${b.issued} certificates issued; distinct certificates served: ${served} (for ${BURST_NAMES} names)`,
    `  ${childrenLine(b.children, b.samples, b.sampledSeconds)}`,
    ...(own < total ? [`  failures: ${failures(b.attempts)}`] : []),
  ].join('\n');
}
