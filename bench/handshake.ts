// Handshake (cache hit): full TLS 1.3 handshakes with SNI, no resumption, against the edge and
// against a plain nginx with a static ssl_certificate of the same certificate and key.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { NginxInstance } from '../bin/local-edge/nginx-instance';
import { freePort } from '../bin/local-edge/processes';
import { httpGet, parseMetrics } from '../test/integration/support/http-client';
import { BenchStack, CLIENT_CPU, SERVER_CPU, StoredCertificate } from './edge-stack';
import { Cleanup } from './lifecycle';
import { interleavedRounds, onlyWorker, PlacementSampler, RoundResult, Side } from './measure';
import { edgeTlsServer, PlainNginx } from './plain-nginx';

/** Connections handshaking at once. */
export const IN_FLIGHT = 8;

/** The load generator: the C client when it compiles, else the (slower) Node.js one. */
export interface HandshakeClient {
  readonly command: string;
  readonly args: string[];
  readonly description: string;
  /** Why the C client is not used, when it is not. */
  readonly fallbackReason?: string;
}

/** Compiles bench/handshake-client.c into dir with gcc against libssl; falls back to Node's client. */
export function handshakeClient(dir: string): HandshakeClient {
  const source = path.join(__dirname, 'handshake-client.c');
  const binary = path.join(dir, 'handshake-client');
  let reason: string;
  if (!existsSync('/usr/include/openssl/ssl.h') && !hasHeader('openssl/ssl.h')) {
    reason = 'the OpenSSL headers are missing (apt-get install libssl-dev)';
  } else {
    try {
      execFileSync('gcc', ['-O2', '-o', binary, source, '-lssl', '-lcrypto'], { stdio: ['ignore', 'ignore', 'pipe'] });
      return { command: 'taskset', args: ['-c', CLIENT_CPU, binary], description: 'C, OpenSSL, epoll (bench/handshake-client.c)' };
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
      reason = e.code === 'ENOENT' ? 'gcc is missing (apt-get install gcc libssl-dev)'
        : `gcc failed (apt-get install gcc libssl-dev?): ${e.stderr?.toString().trim().split('\n')[0] ?? e.message}`;
    }
  }
  return {
    command: 'taskset',
    args: ['-c', CLIENT_CPU, process.execPath, ...process.execArgv, path.join(__dirname, 'handshake-client-node.ts')],
    description: 'Node.js (bench/handshake-client-node.ts): client-bound, handshakes/s understated',
    fallbackReason: reason,
  };
}

function hasHeader(header: string): boolean {
  try {
    execFileSync('sh', ['-c', `echo '#include <${header}>' | gcc -E -x c - >/dev/null`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface HandshakeReport {
  readonly client: HandshakeClient;
  readonly proxyProtocol: boolean;
  readonly edge: RoundResult[];
  readonly plain: RoundResult[];
  /** From the edge's /metrics over the whole run: handshakes by certificate source. */
  readonly edgeSources: Record<string, number>;
}

interface ClientRun { handshakes: number; errors: number; seconds: number; first_error: string }

/** Sums edge_handshakes_total by its certificate label. */
async function handshakeSources(edge: NginxInstance): Promise<Record<string, number>> {
  const metrics = parseMetrics((await httpGet(edge.profile.instance.statusPort, '/metrics')).body);
  const sources: Record<string, number> = {};
  for (const [series, value] of metrics) {
    const m = /^edge_handshakes_total\{certificate="([^"]*)"\}$/.exec(series);
    if (m) sources[m[1]] = value;
  }
  return sources;
}

export async function runHandshakeBench(o: {
  stack: BenchStack; edge: NginxInstance; cert: StoredCertificate; client: HandshakeClient; cleanup: Cleanup;
  rounds: number; seconds: number; warmupSeconds: number; sampler: PlacementSampler;
}): Promise<HandshakeReport> {
  const server = edgeTlsServer(readFileSync(o.edge.confFile, 'utf8'));
  const proxyProtocol = server.listenFlags.includes('proxy_protocol');
  const plainPort = await freePort();
  const plain = new PlainNginx('plain-handshake', path.join(o.stack.workDir, 'plain-handshake'), [
    'access_log off;',
    'server {',
    `  listen 127.0.0.1:${plainPort} ${server.listenFlags.join(' ')};`,
    ...server.listenerLines.map((l) => `  ${l}`),
    `  ssl_certificate ${o.cert.files.cert};`,
    `  ssl_certificate_key ${o.cert.files.key};`,
    ...server.tlsLines.map((l) => `  ${l}`),
    '  location / {',
    '    return 200 "plain\\n";',
    '  }',
    '}',
  ], plainPort);
  o.cleanup.add('plain-handshake', () => plain.stop());
  await plain.start(SERVER_CPU);

  const edgePort = o.edge.profile.instance.httpsPort;
  const clientArgs = (port: number, extra: string[]) => [
    ...o.client.args, '--port', String(port), '--sni', o.cert.name, ...(proxyProtocol ? ['--proxy-v1'] : []), ...extra,
  ];
  // Both must serve the very certificate in the store, over TLS 1.3.
  for (const [label, port] of [['edge', edgePort], ['plain nginx', plainPort]] as const) {
    const probe = JSON.parse(await o.cleanup.runClient(o.client.command, clientArgs(port, ['--probe', '--timeout-ms', '30000']), { timeoutMs: 40000 }));
    if (probe.fingerprint256 !== o.cert.fingerprint256 || probe.protocol !== 'TLSv1.3') {
      throw new Error(`${label} served ${probe.fingerprint256} over ${probe.protocol}; expected ${o.cert.fingerprint256} over TLSv1.3`);
    }
  }

  const side = (label: string, port: number, cpuPid: number): Side => ({
    label,
    cpuPid,
    load: async (seconds) => {
      const out = await o.cleanup.runClient(o.client.command,
        clientArgs(port, ['--seconds', String(seconds), '--in-flight', String(IN_FLIGHT)]), {
          timeoutMs: seconds * 1000 + 30000,
          onStart: (client) => o.sampler.sampleOnce(`handshake ${label}`, () => [[`${label} worker`, cpuPid], [`handshake client (to ${label})`, client]]),
        });
      const r = JSON.parse(out) as ClientRun;
      if (r.handshakes === 0) throw new Error(`${label}: no handshake completed (${r.first_error})`);
      if (r.errors > 0) console.error(`bench: ${label}: ${r.errors} failed handshakes, the first: ${r.first_error}`);
      return { ops: r.handshakes, wallSeconds: r.seconds, errors: r.errors, rate: r.handshakes / r.seconds };
    },
  });
  const before = await handshakeSources(o.edge);
  const [edge, plainResults] = await interleavedRounds(
    [side('edge', edgePort, onlyWorker(o.edge.pid!)), side('plain nginx', plainPort, plain.workerPid)],
    { rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds });
  const after = await handshakeSources(o.edge);
  const edgeSources = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
  await o.cleanup.runNow('plain-handshake');
  return { client: o.client, proxyProtocol, edge, plain: plainResults, edgeSources };
}
