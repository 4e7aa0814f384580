// First issuance: the edge (our ACME client, in Lua on cosockets) against Caddy 2.6's on-demand
// TLS, each on its own pebble (PEBBLE_VA_NOSLEEP=1, http-01 to its own HTTP port), side by side
// in one run; the child processes of the edge's worker meanwhile; then a burst of first
// requests over two edge instances. Figures are printed, never asserted.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NginxInstance } from '../bin/local-edge/nginx-instance';
import { OriginServer } from '../bin/local-edge/origin-server';
import { PebbleServer } from '../bin/local-edge/pebble-server';
import { freePort } from '../bin/local-edge/processes';
import { CaddyServer, caddyVersion } from './caddy';
import { BenchStack, CLIENT_CPU, SERVER_CPU } from './edge-stack';
import { Attempt, BurstSpec, firstRequest, RequestTarget } from './first-request';
import { Cleanup } from './lifecycle';
import { ChildSampler, ChildrenSeen, onlyWorker, PlacementSampler } from './measure';
import { edgeReady, ORIGIN_NAME } from './proxy';

/** New names per side, one at a time; the burst's names, first requests per name, instances. */
export const ISSUANCE_NAMES = 10;
export const BURST_NAMES = 50;
export const BURST_PER_NAME = 4;
export const BURST_INSTANCES = 2;
export const CHILD_SAMPLE_MS = 20;
/** A new environment (Redis prefix) for the issuance edges: its first name registers the account. */
export const ISSUANCE_ENVIRONMENT = 'issuance';

export interface SideIssuance {
  readonly label: string;
  /** The first name of a new environment / a fresh storage: the account registration included. */
  readonly firstEver: Attempt;
  /** Accounts pebble created during firstEver, and during the rest. */
  readonly accountsFirstEver: number;
  readonly accountsAfter: number;
  readonly runs: Attempt[];
  /** Orders pebble received during the runs. */
  readonly orders: number;
}

export interface BurstReport {
  readonly attempts: Attempt[];
  readonly lastMs: number;
  readonly orders: number;
  readonly issued: number;
  readonly children: ChildrenSeen[];
  readonly samples: number;
  readonly sampledSeconds: number;
}

export interface IssuanceReport {
  readonly caddyVersion: string;
  /** Caddy's internal rate-limiter waits (name → ms) during the side-by-side runs. */
  readonly caddyRateLimiterWaits: Record<string, number>;
  readonly edge: SideIssuance;
  readonly caddy: SideIssuance;
  readonly children: ChildrenSeen[];
  readonly samples: number;
  readonly sampledSeconds: number;
  readonly burst: BurstReport;
}

interface Target extends RequestTarget {
  readonly label: string;
  readonly domain: string;
  readonly pebble: PebbleServer;
}

/** A first request for a new name, allowed by the domain check just before. */
function firstRequestFor(stack: BenchStack, t: Target, name: string, timeoutMs: number): Promise<Attempt> {
  stack.domainCheck.allowed.add(name);
  return firstRequest(t, name, timeoutMs);
}

/** The 10 + 1 first issuances of each side, alternating, with the children of the servers sampled. */
async function sideBySide(stack: BenchStack, targets: Target[], watched: Array<[string, number]>) {
  const firstEver: Array<{ attempt: Attempt; accounts: number }> = [];
  for (const t of targets) {
    const before = t.pebble.accounts();
    const attempt = await firstRequestFor(stack, t, `first.${t.domain}`, 90000);
    firstEver.push({ attempt, accounts: t.pebble.accounts() - before });
  }
  const accountsBefore = targets.map((t) => t.pebble.accounts());
  const ordersBefore = targets.map((t) => t.pebble.orders());
  const runs: Attempt[][] = targets.map(() => []);
  const sampler = new ChildSampler(watched, CHILD_SAMPLE_MS);
  let children: Awaited<ReturnType<ChildSampler['stop']>>;
  try {
    for (let i = 0; i < ISSUANCE_NAMES; i++) {
      const order = targets.map((_, k) => k);
      if (i % 2 === 1) order.reverse();
      for (const k of order) runs[k].push(await firstRequestFor(stack, targets[k], `n${i + 1}.${targets[k].domain}`, 90000));
    }
  } finally {
    children = await sampler.stop();
  }
  const sides = targets.map((t, k): SideIssuance => ({
    label: t.label, firstEver: firstEver[k].attempt, accountsFirstEver: firstEver[k].accounts,
    accountsAfter: t.pebble.accounts() - accountsBefore[k], runs: runs[k], orders: t.pebble.orders() - ordersBefore[k],
  }));
  return { sides, children };
}

/**
 * BURST_NAMES new names, BURST_PER_NAME first requests each at once, spread over the instances;
 * the clients run in a child process (bench/first-request.ts) on the client's CPU.
 */
async function burst(stack: BenchStack, cleanup: Cleanup, edges: NginxInstance[]): Promise<BurstReport> {
  const names = Array.from({ length: BURST_NAMES }, (_, i) => `b${i + 1}.burst.issuance.test`);
  for (const name of names) stack.domainCheck.allowed.add(name);
  const spec: BurstSpec = {
    targets: edges.map((e) => ({ port: e.profile.instance.httpsPort, proxy: true, chain: stack.issuingChain })),
    names, perName: BURST_PER_NAME, timeoutMs: 60000,
  };
  const specFile = path.join(stack.workDir, 'burst.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const ordersBefore = stack.pebble.orders();
  const issuedBefore = stack.pebble.issuedSerials().length;
  const sampler = new ChildSampler(edges.map((e): [string, number] => [`${e.name} worker`, onlyWorker(e.pid!)]), CHILD_SAMPLE_MS);
  let out: string;
  let children: Awaited<ReturnType<ChildSampler['stop']>>;
  try {
    out = await cleanup.runClient('taskset', ['-c', CLIENT_CPU, process.execPath, ...process.execArgv, path.join(__dirname, 'first-request.ts'), specFile], {
      timeoutMs: spec.timeoutMs + 30000,
    });
  } finally {
    children = await sampler.stop();
  }
  const { attempts, lastMs } = JSON.parse(out) as { attempts: Attempt[]; lastMs: number };
  return {
    attempts, lastMs, orders: stack.pebble.orders() - ordersBefore,
    issued: stack.pebble.issuedSerials().length - issuedBefore, children: children.seen, samples: children.samples,
    sampledSeconds: children.seconds,
  };
}

export async function runIssuanceBench(o: { stack: BenchStack; cleanup: Cleanup; sampler: PlacementSampler }): Promise<IssuanceReport> {
  const { stack, cleanup } = o;
  const progress = (message: string) => console.error(`bench: issuance: ${message}`);

  // The edge proxies the first request to an origin (a Node HTTPS server in this process, on the
  // client's CPU), found by name through pebble-challtestsrv; Caddy answers it itself.
  const origin = new OriginServer({ tls: stack.originCertificate(ORIGIN_NAME) });
  cleanup.add('issuance origin', () => origin.stop());
  await origin.start();
  await stack.pebble.dns.setA(ORIGIN_NAME, ['127.0.0.1']);
  const originUrl = `https://${ORIGIN_NAME}:${origin.port}`;

  progress('starting Caddy with its own pebble + challtestsrv (http-01 to Caddy\'s HTTP port)');
  const caddyHttp = await freePort();
  const caddyPebble = await stack.startPebble('pebble-caddy', caddyHttp);
  const caddy = new CaddyServer({
    httpPort: caddyHttp, httpsPort: await freePort(), acmeDirectory: caddyPebble.directoryUrl,
    acmeApiCaFile: caddyPebble.apiCa, askUrl: stack.domainCheck.url,
  }, path.join(stack.workDir, 'caddy'));
  cleanup.add('caddy', () => caddy.stop());
  await caddy.start(SERVER_CPU);

  progress(`starting the edge in a new environment "${ISSUANCE_ENVIRONMENT}" (its first name registers the ACME account)`);
  const edge = await stack.startEdge('issuance', { proxyProtocol: true, originUrl, environment: ISSUANCE_ENVIRONMENT });
  await edgeReady(edge);
  const edgeWorker = onlyWorker(edge.pid!);

  const targets: Target[] = [
    { label: 'edge', domain: 'edge.issuance.test', port: edge.profile.instance.httpsPort, proxy: true, pebble: stack.pebble, chain: stack.issuingChain },
    { label: 'caddy', domain: 'caddy.issuance.test', port: caddy.options.httpsPort, proxy: false, pebble: caddyPebble, chain: await caddyPebble.issuingChain() },
  ];
  progress(`first-ever issuance of each side, then ${ISSUANCE_NAMES} new names each, one at a time, alternating`);
  o.sampler.sampleOnce('issuance', () => [['edge worker (issuance)', edgeWorker], ['caddy', caddy.pid]]);
  const { sides, children } = await sideBySide(stack, targets, [['edge nginx worker', edgeWorker], ['caddy', caddy.pid]]);
  const caddyRateLimiterWaits = caddy.rateLimiterWaits();
  for (const what of ['caddy', 'pebble-caddy', 'edge issuance']) await cleanup.runNow(what);

  progress(`burst: ${BURST_NAMES} new names × ${BURST_PER_NAME} first requests at once over ${BURST_INSTANCES} edge instances`);
  const edges: NginxInstance[] = [];
  for (let i = 0; i < BURST_INSTANCES; i++) {
    edges.push(await stack.startEdge(`burst-${String.fromCharCode(97 + i)}`, { proxyProtocol: true, originUrl, environment: ISSUANCE_ENVIRONMENT }));
  }
  await Promise.all(edges.map((e) => edgeReady(e)));
  o.sampler.sampleOnce('burst', () => edges.map((e): [string, number] => [`edge ${e.name} worker`, onlyWorker(e.pid!)]), 300);
  const burstReport = await burst(stack, cleanup, edges);
  for (const e of edges) await cleanup.runNow(`edge ${e.name}`);
  await cleanup.runNow('issuance origin');

  return { caddyVersion: caddyVersion(), caddyRateLimiterWaits, edge: sides[0], caddy: sides[1], children: children.seen, samples: children.samples,
    sampledSeconds: children.seconds, burst: burstReport };
}
