// The first request for a new name (TCP connect → TLS handshake, i.e. the issuance → GET / →
// first byte), and the burst of them. Run as a script (`first-request.ts <spec.json>`), it
// fires a burst in its own process and prints the attempts as JSON: so the clients' TLS work
// does not hold up the servers that live in the bench's process (the domain check, the
// validation load balancer, the origin) while they are being measured.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { tlsProbe } from '../test/integration/support/tls-client';

/** Where a first request goes: the edge listens with proxy_protocol (as behind the NLB), Caddy without. */
export interface RequestTarget {
  readonly port: number;
  readonly proxy: boolean;
  /** pebble's issuing chain (PEM) the certificate must verify against. */
  readonly chain: string;
}

export interface Attempt {
  readonly name: string;
  readonly handshakeMs: number;
  readonly firstByteMs: number;
  /** Milliseconds from the start of the burst to the end of this attempt (burst only). */
  readonly doneMs?: number;
  /** The chain verifies against the side's pebble and the SAN is this very name. */
  readonly ownName: boolean;
  readonly status?: number;
  readonly serial?: string;
  readonly error?: string;
}

export async function firstRequest(t: RequestTarget, name: string, timeoutMs: number): Promise<Attempt> {
  const r = await tlsProbe({
    port: t.port, servername: name, ca: t.chain, request: { path: '/' }, timeoutMs,
    ...(t.proxy ? { proxyFrom: { address: '198.51.100.30', port: 40000 } } : {}),
  });
  const ownName = r.verified && (r.certificate?.subjectAltName ?? '').split(', ').includes(`DNS:${name}`);
  const status = r.response?.status;
  const served = r.certificate ? (r.certificate.subjectAltName ?? `CN=${r.certificate.subjectCN}`) : 'no certificate';
  const error = r.error ?? (!r.verified ? `${r.verifyError ?? 'not verified'} (served ${served})` : status !== 200 ? `HTTP ${status}` : undefined);
  return { name, handshakeMs: r.handshakeMs, firstByteMs: r.firstByteMs ?? NaN, ownName, status, serial: r.certificate?.serial, error };
}

/** What the burst script reads: perName first requests for each name at once, request k to targets[k % n]. */
export interface BurstSpec {
  readonly targets: RequestTarget[];
  readonly names: string[];
  readonly perName: number;
  readonly timeoutMs: number;
}

export async function runBurst(spec: BurstSpec): Promise<{ attempts: Attempt[]; lastMs: number }> {
  const started = performance.now();
  const attempts = await Promise.all(spec.names.flatMap((name) => Array.from({ length: spec.perName }, async (_, k) => {
    const a = await firstRequest(spec.targets[k % spec.targets.length], name, spec.timeoutMs);
    return { ...a, doneMs: performance.now() - started };
  })));
  return { attempts, lastMs: Math.max(...attempts.map((a) => a.doneMs)) };
}

if (require.main === module) {
  const spec = JSON.parse(readFileSync(process.argv[2], 'utf8')) as BurstSpec;
  void runBurst(spec).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
