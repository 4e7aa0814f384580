// Proxied requests: wrk (keep-alive) over TLS to the edge and to a plain nginx reverse proxy
// (upstream + keepalive), both in front of the same origin nginx (1 KB over TLS).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NginxInstance } from '../bin/local-edge/nginx-instance';
import { freePort, waitFor } from '../bin/local-edge/processes';
import { httpGet } from '../test/integration/support/http-client';
import { tlsProbe } from '../test/integration/support/tls-client';
import { BenchStack, CLIENT_CPU, SERVER_CPU, StoredCertificate } from './edge-stack';
import { Cleanup } from './lifecycle';
import { interleavedRounds, onlyWorker, PlacementSampler, RoundResult, Side } from './measure';
import { edgeTlsServer, PlainNginx } from './plain-nginx';

/** wrk's threads and connections: `wrk -t1 -c8`. */
export const WRK_THREADS = 1;
export const WRK_CONNECTIONS = 8;
/** The origin's name (its certificate is for it) and the size of its response body. */
export const ORIGIN_NAME = 'origin.bench.test';
export const ORIGIN_BODY_BYTES = 1024;

/** How wrk reaches a name: a private /etc/hosts in its own mount namespace, so it sends SNI. */
export interface WrkLauncher {
  readonly command: string;
  readonly prefix: string[];
  /** Whether wrk connects by the customer name (SNI and Host), or by 127.0.0.1 (no SNI). */
  readonly sni: boolean;
  readonly note?: string;
}

/** unshare -m + mount --bind of a hosts file naming `name` 127.0.0.1; else plain wrk without SNI. */
export function wrkLauncher(workDir: string, name: string): WrkLauncher {
  const hosts = path.join(workDir, 'hosts');
  writeFileSync(hosts, `${readFileSync('/etc/hosts', 'utf8')}\n127.0.0.1 ${name}\n`);
  const inNamespace = (command: string) => ['-m', 'sh', '-c', `mount --bind "$0" /etc/hosts && exec ${command} "$@"`, hosts];
  try {
    const out = execFileSync('unshare', [...inNamespace('getent'), 'hosts', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (!out.includes('127.0.0.1')) throw new Error(`getent said: ${out.trim()}`);
    return { command: 'unshare', prefix: inNamespace(`taskset -c ${CLIENT_CPU} wrk`), sni: true };
  } catch (error) {
    return {
      command: 'taskset', prefix: ['-c', CLIENT_CPU, 'wrk'], sni: false,
      note: `wrk connects to 127.0.0.1 without SNI (the edge then serves its fallback certificate): a private /etc/hosts `
        + `needs root and unshare -m (${(error as Error).message.split('\n')[0]})`,
    };
  }
}

/** What wrk printed, in numbers. */
export interface WrkRun {
  readonly requests: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly socketErrors: number;
}

function toMs(value: string, unit: string): number {
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60000 };
  return Number(value) * (scale[unit] ?? NaN);
}

export function parseWrk(out: string): WrkRun {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (!total) throw new Error(`unexpected wrk output: ${out.trim().slice(0, 400)}`);
  return {
    requests: Number(total[1]),
    seconds: toMs(total[2], total[3]) / 1000,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

export interface ProxyReport {
  readonly wrk: WrkLauncher;
  readonly edge: RoundResult[];
  readonly plain: RoundResult[];
  readonly edgeOriginUrl: string;
}

/** Accepted connections of the origin so far (stub_status). */
async function originAccepts(statusPort: number): Promise<number> {
  const res = await httpGet(statusPort, '/stub_status');
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(res.body);
  if (res.status !== 200 || !m) throw new Error(`origin stub_status: HTTP ${res.status}: ${res.body.slice(0, 200)}`);
  return Number(m[1]);
}

/** Waits for the edge's readiness (the origin's addresses resolved), where it has a /ready. */
export async function edgeReady(edge: NginxInstance): Promise<void> {
  await waitFor(`the edge's /ready, i.e. the origin resolved (see ${edge.errorLogFile})`, async () => {
    const status = (await httpGet(edge.profile.instance.statusPort, '/ready')).status;
    return status === 200 || status === 404; // 404: a render without readiness
  }, 15000);
}

export async function runProxyBench(o: {
  stack: BenchStack; cert: StoredCertificate; cleanup: Cleanup; rounds: number; seconds: number; warmupSeconds: number;
  sampler: PlacementSampler;
}): Promise<ProxyReport> {
  const { stack, cert, cleanup } = o;

  // The origin: a third nginx, pinned to the client's CPU, with a counter of its connections.
  const originPort = await freePort();
  const originStatusPort = await freePort();
  const originCert = stack.originCertificate(ORIGIN_NAME);
  const origin = new PlainNginx('origin', path.join(stack.workDir, 'origin'), [
    'access_log off;',
    'server {',
    `  listen 127.0.0.1:${originPort} ssl;`,
    `  ssl_certificate ${originCert.cert};`,
    `  ssl_certificate_key ${originCert.key};`,
    '  ssl_protocols TLSv1.2 TLSv1.3;',
    '  ssl_session_cache shared:origin_tls:10m;',
    '  location / {',
    '    default_type text/plain;',
    `    return 200 "${'x'.repeat(ORIGIN_BODY_BYTES - 1)}\\n";`,
    '  }',
    '}',
    'server {',
    `  listen 127.0.0.1:${originStatusPort};`,
    '  location = /stub_status {',
    '    stub_status;',
    '  }',
    '}',
  ], originStatusPort);
  cleanup.add('origin', () => origin.stop());
  await origin.start(CLIENT_CPU);

  // The edge as rendered, without PROXY protocol (wrk cannot send the header); it finds the
  // origin by name through pebble-challtestsrv's DNS.
  await stack.pebble.dns.setA(ORIGIN_NAME, ['127.0.0.1']);
  const edgeOriginUrl = `https://${ORIGIN_NAME}:${originPort}`;
  const edge: NginxInstance = await stack.startEdge('proxy', { proxyProtocol: false, originUrl: edgeOriginUrl });
  await edgeReady(edge);
  const server = edgeTlsServer(readFileSync(edge.confFile, 'utf8'));
  if (server.listenFlags.includes('proxy_protocol')) throw new Error('the proxy bench edge must listen without proxy_protocol');

  const plainPort = await freePort();
  const plain = new PlainNginx('plain-proxy', path.join(stack.workDir, 'plain-proxy'), [
    ...server.logFormat,
    `access_log ${path.join(stack.workDir, 'plain-proxy', 'access.log')} edge;`,
    'upstream bench_origin {',
    `  server 127.0.0.1:${originPort};`,
    '  keepalive 32;',
    '}',
    'server {',
    `  listen 127.0.0.1:${plainPort} ${server.listenFlags.join(' ')};`,
    ...server.listenerLines.map((l) => `  ${l}`),
    `  ssl_certificate ${cert.files.cert};`,
    `  ssl_certificate_key ${cert.files.key};`,
    ...server.tlsLines.map((l) => `  ${l}`),
    '  location / {',
    '    proxy_pass https://bench_origin;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '    proxy_set_header Host $host;',
    '    proxy_set_header X-Forwarded-For $remote_addr;',
    '    proxy_set_header X-Real-IP $remote_addr;',
    '    proxy_set_header X-Forwarded-Proto https;',
    '    proxy_set_header X-Forwarded-Host $host;',
    '    proxy_connect_timeout 5s;',
    '    proxy_read_timeout 60s;',
    '    proxy_ssl_server_name on;',
    `    proxy_ssl_name ${ORIGIN_NAME};`,
    '    proxy_ssl_verify on;',
    `    proxy_ssl_trusted_certificate ${stack.trustedCaFile};`,
    '    proxy_ssl_verify_depth 4;',
    '    proxy_ssl_protocols TLSv1.2 TLSv1.3;',
    '  }',
    '}',
  ], plainPort);
  cleanup.add('plain-proxy', () => plain.stop());
  await plain.start(SERVER_CPU);

  // Both serve the stored certificate and pass the origin's page through.
  const edgePort = edge.profile.instance.httpsPort;
  for (const [label, port] of [['edge', edgePort], ['plain nginx', plainPort]] as const) {
    const r = await tlsProbe({ port, servername: cert.name, ca: stack.issuingChain, request: { path: '/' }, timeoutMs: 30000 });
    if (!r.verified || r.certificate?.fingerprint256 !== cert.fingerprint256) {
      throw new Error(`${label} did not serve the stored certificate for ${cert.name}: ${r.error ?? r.verifyError ?? r.certificate?.fingerprint256}`);
    }
    if (r.response?.status !== 200 || r.response.body.length !== ORIGIN_BODY_BYTES) {
      throw new Error(`${label}: GET / gave HTTP ${r.response?.status} with ${r.response?.body.length} bytes (expected the origin's 200 of ${ORIGIN_BODY_BYTES}): ${r.response?.body.slice(0, 200)}`);
    }
  }

  const wrk = wrkLauncher(stack.workDir, cert.name);
  const wrkSeconds = Math.max(1, Math.round(o.seconds));
  const side = (label: string, port: number, cpuPid: number): Side => ({
    label,
    cpuPid,
    load: async (seconds) => {
      const url = wrk.sni ? `https://${cert.name}:${port}/` : `https://127.0.0.1:${port}/`;
      const before = await originAccepts(originStatusPort);
      const out = await cleanup.runClient(wrk.command, [
        ...wrk.prefix, `-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency',
        ...(wrk.sni ? [] : ['-H', `Host: ${cert.name}`]), url,
      ], {
        timeoutMs: seconds * 1000 + 30000,
        onStart: (client) => o.sampler.sampleOnce(`proxy ${label}`,
          () => [[`${label} worker`, cpuPid], [`wrk (to ${label})`, client], ['origin worker', origin.workerPid]]),
      });
      // Minus one: the stub_status request that reads the count.
      const originConnections = (await originAccepts(originStatusPort)) - before - 1;
      const r = parseWrk(out);
      return {
        ops: r.requests, wallSeconds: r.seconds, rate: r.requests / r.seconds, p50Ms: r.p50Ms, p99Ms: r.p99Ms,
        errors: r.non2xx + r.socketErrors, originConnectionsPer1000: (originConnections * 1000) / r.requests,
      };
    },
  });
  const [edgeResults, plainResults] = await interleavedRounds(
    [side('edge', edgePort, onlyWorker(edge.pid!)), side('plain nginx', plainPort, plain.workerPid)],
    { rounds: o.rounds, seconds: wrkSeconds, warmupSeconds: o.warmupSeconds });
  for (const what of ['plain-proxy', 'edge proxy', 'origin']) await cleanup.runNow(what);
  return { wrk, edge: edgeResults, plain: plainResults, edgeOriginUrl };
}
