// The printed tables of npm run bench.
import { StoredCertificate } from './edge-stack';
import { HandshakeReport, IN_FLIGHT } from './handshake';
import { Placement, RoundResult, ratioSpread, Spread, spread } from './measure';
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
