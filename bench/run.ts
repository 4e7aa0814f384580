#!/usr/bin/env node
// npm run bench: the edge against a plain nginx, and its first issuance against Caddy's on-demand
// TLS, side by side in one run (README, "Development"). One nginx worker (or Caddy) pinned to
// CPU 0, the client (and everything else) on CPU 1; server CPU from /proc/<worker>/stat over
// interleaved rounds; medians [min–max], ratios per round. Figures are printed, never asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findAutoSslTree } from '../bin/local-edge/auto-ssl-tree';
import { NginxInstance, nginxBinary, nginxModules, runningAsRoot } from '../bin/local-edge/nginx-instance';
import { stopPid } from '../bin/local-edge/processes';
import { processesMentioning } from '../test/integration/support/leftovers';
import { BenchStack, CLIENT_CPU, otherAutoSslNginx, SERVER_CPU, STORE_PREFIX, StoredCertificate } from './edge-stack';
import { CADDY_BINARY } from './caddy';
import { handshakeClient, runHandshakeBench } from './handshake';
import { runIssuanceBench } from './issuance';
import { Cleanup } from './lifecycle';
import { CLOCK_TICKS, pin, PlacementSampler } from './measure';
import { runProxyBench } from './proxy';
import { renewalTable, runRenewalBench } from './renewal';
import { certificateLine, handshakeTable, issuanceTable, placementLines, proxyTable } from './report';

/** The benches, in the order they run. */
const BENCHES = ['handshake', 'proxy', 'issuance', 'renewal'] as const;
type Bench = (typeof BENCHES)[number];

const DEFAULT_AUTO_SSL_TREE = '/opt/lua-resty-auto-ssl';
const CUSTOMER_NAME = 'shop.bench-customer.test';
const WARMUP_SECONDS = 1;
/** The handshake edge's origin: never requested. */
const UNUSED_ORIGIN_URL = 'https://127.0.0.1:9';

const USAGE = `usage: npm run bench -- [--rounds N] [--seconds S] [--only handshake|proxy|issuance|renewal[,...]] [--keep]
  --rounds N    interleaved rounds (default 5)
  --seconds S   seconds per side per round (default 3; whole seconds for wrk)
  --only ...    run only these benches (default: all; issuance = first issuance vs Caddy's on-demand TLS, and a burst;
                renewal = a renewer pass over 100,000 indexed names vs the full SCAN listing; --rounds applies)
  --keep        keep the work directory (configs, logs) after the run`;

interface Options { rounds: number; seconds: number; only: Bench[]; keep: boolean }

function usage(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 5, seconds: 3, only: [...BENCHES], keep: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === '--keep') {
      o.keep = true;
    } else if (flag === '--rounds') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) usage('--rounds must be a whole number, at least 1');
      o.rounds = n;
    } else if (flag === '--seconds') {
      const s = Number(value());
      if (!Number.isFinite(s) || s < 1) usage('--seconds must be a number, at least 1');
      o.seconds = s;
    } else if (flag === '--only') {
      const names = value().split(',').filter(Boolean);
      const bad = names.filter((n) => !(BENCHES as readonly string[]).includes(n));
      if (names.length === 0 || bad.length > 0) usage(`--only takes ${BENCHES.join(', ')}${bad.length ? `, not ${bad.join(', ')}` : ''}`);
      o.only = BENCHES.filter((b) => names.includes(b));
    } else {
      usage(`unknown argument ${argv[i]}`);
    }
  }
  return o;
}

function onPath(command: string): boolean {
  if (command.includes('/')) return existsSync(command);
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** `nginx -V` (it prints to stderr). */
function nginxBuild(): string {
  const r = spawnSync(nginxBinary(), ['-V'], { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** What is missing for these benches, each naming what to install. */
function missingPrerequisites(only: Bench[], autoSslReason?: string): string[] {
  const missing: string[] = [];
  if (autoSslReason) missing.push(`lua-resty-auto-ssl: ${autoSslReason} (see README, "Local edge": luarocks --tree=${DEFAULT_AUTO_SSL_TREE} install lua-resty-auto-ssl 0.13.1)`);
  const need = (command: string, apt: string) => {
    if (!onPath(command)) missing.push(`${command} (apt-get install ${apt})`);
  };
  need(nginxBinary(), 'nginx');
  need('redis-server', 'redis-server');
  if (only.some((b) => b !== 'renewal')) {
    need('pebble', 'pebble');
    need('pebble-challtestsrv', 'pebble');
  }
  need('openssl', 'openssl');
  need('taskset', 'util-linux');
  if (onPath(nginxBinary())) {
    const build = nginxBuild();
    if (nginxModules().length === 0 && !/lua-nginx-module/.test(build)) {
      missing.push('the nginx Lua module, /usr/lib/nginx/modules/ngx_http_lua_module.so (apt-get install libnginx-mod-http-lua libnginx-mod-http-ndk)');
    }
    if (only.includes('proxy') && !build.includes('http_stub_status_module')) missing.push('nginx with stub_status (apt-get install nginx)');
  }
  if (!existsSync('/usr/share/lua/5.1/resty/core.lua') && !/openresty/i.test(nginxBuild())) missing.push('lua-resty-core (apt-get install lua-resty-core)');
  const cjson = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib']
    .some((dir) => existsSync(path.join(dir, 'lua/5.1/cjson.so')));
  if (!cjson && !/openresty/i.test(nginxBuild())) missing.push('lua-cjson (apt-get install lua-cjson)');
  if (only.includes('proxy')) need('wrk', 'wrk');
  if (only.includes('issuance')) need(CADDY_BINARY, 'caddy');
  return missing;
}

function machineLine(loadBefore: number): string {
  const version = readFileSync('/proc/version', 'utf8');
  const gvisor = /^Linux version 4\.4\.0 #1 SMP Sun Jan 10 15:06:54 PST 2016/.test(version);
  const nginx = /nginx version: (\S+)/.exec(nginxBuild())?.[1] ?? '?';
  const openssl = (() => {
    try {
      return execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
    } catch {
      return 'openssl ?';
    }
  })();
  return `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), kernel ${os.release()}${gvisor ? ' (gVisor)' : ''}, `
    + `load average ${loadBefore.toFixed(2)} before the run; ${nginx}; ${openssl}; CPU from /proc/<pid>/stat at ${CLOCK_TICKS} ticks/s`;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));

  if (process.platform !== 'linux') usage('needs Linux (/proc, taskset)');
  const { tree, reason } = findAutoSslTree({ ...process.env, AUTO_SSL_TREE: process.env.AUTO_SSL_TREE || DEFAULT_AUTO_SSL_TREE });
  // The renewal bench needs no lua-resty-auto-ssl, pebble nor domain check (BenchStack).
  const needsStack = o.only.some((b) => b !== 'renewal');
  const autoSslReason = tree || !needsStack ? undefined
    : process.env.AUTO_SSL_TREE ? reason : `AUTO_SSL_TREE is not set and ${DEFAULT_AUTO_SSL_TREE} is not a lua-resty-auto-ssl tree (${reason})`;
  const missing = missingPrerequisites(o.only, autoSslReason);
  if (os.cpus().length < 2) missing.push('a second CPU: the server and the client each get one (taskset)');
  if (missing.length > 0) {
    console.error(`bench: cannot run, missing:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    process.exit(2);
  }

  const loadBefore = os.loadavg()[0];
  const others = otherAutoSslNginx();
  if (others.length > 0) {
    console.error(`bench: WARNING: other auto-ssl nginx instances run on this machine (masters ${others.join(', ')}): `
      + 'the figures get noisier');
  }
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'edge-bench-'));
  if (runningAsRoot()) chmodSync(workDir, 0o755); // the edge's workers (www-data) read beneath it
  const cleanup = new Cleanup();
  let stopping = false;
  const finish = async (code: number, keepDir: boolean) => {
    if (stopping) return;
    stopping = true;
    await cleanup.run();
    for (const p of processesMentioning(workDir)) {
      console.error(`bench: still running after stop: ${p.pid} ${p.cmdline}; stopping it`);
      await stopPid(p.pid);
    }
    if (keepDir) console.error(`bench: files (logs, configs) kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal}: stopping everything it started`);
      void finish(130, o.keep);
    });
  }
  const progress = (message: string) => console.error(`bench: ${message}`);

  try {
    // This process and everything it starts run on the client's CPU; the measured nginx
    // workers are moved to SERVER_CPU once started.
    pin(process.pid, CLIENT_CPU);
    const client = o.only.includes('handshake') ? handshakeClient(workDir) : undefined;
    if (client?.fallbackReason) console.error(`bench: the C handshake client is not available: ${client.fallbackReason}; using the Node.js client`);

    if (needsStack) progress(`starting Redis, pebble + challtestsrv, the domain check (files in ${workDir})`);
    const stack = needsStack ? await BenchStack.start(workDir, tree!.root, [CUSTOMER_NAME], cleanup) : undefined;
    const sampler = new PlacementSampler();
    const rounds = { rounds: o.rounds, seconds: o.seconds, warmupSeconds: WARMUP_SECONDS, sampler };
    const againstPlain = o.only.includes('handshake') || o.only.includes('proxy');
    let issued: { issuer: NginxInstance; cert: StoredCertificate } | undefined;
    if (againstPlain) {
      progress('starting the edge (proxy_protocol, as rendered) and having pebble issue a certificate through its first handshake');
      const issuer = await stack!.startEdge('handshake', { proxyProtocol: true, originUrl: UNUSED_ORIGIN_URL });
      issued = { issuer, cert: await stack!.issue(issuer, CUSTOMER_NAME) };
    }

    // Each table is printed as soon as its bench is done (stdout; progress goes to stderr).
    console.log([
      '',
      ...(againstPlain ? [`npm run bench: ${o.rounds} interleaved rounds × ${o.seconds} s per side (order alternating), after a ${WARMUP_SECONDS} s warm-up; `
        + 'medians [min–max]; ratios computed per round'] : ['npm run bench']),
      !needsStack ? `the renewal bench's nginx (1 worker) on CPU ${SERVER_CPU} (taskset), its Redis and everything else on CPU ${CLIENT_CPU}` : `one nginx worker${o.only.includes('issuance') ? ' (and Caddy, GOMAXPROCS 1)' : ''} on CPU ${SERVER_CPU} (taskset); `
        + `the client, the origin${o.only.includes('issuance') ? ', pebble' : ''} and everything else on CPU ${CLIENT_CPU}; `
        + (againstPlain ? 'server CPU = the worker\'s utime+stime / work done' : 'no CPU figures in the issuance bench'),
      machineLine(loadBefore),
      ...(issued ? [certificateLine(issued.cert, STORE_PREFIX)] : []),
      '',
    ].join('\n'));
    if (client && issued) {
      progress(`handshake bench: ${o.rounds} rounds of ${o.seconds} s per side`);
      console.log(`${handshakeTable(await runHandshakeBench({ stack: stack!, edge: issued.issuer, cert: issued.cert, client, cleanup, ...rounds }))}\n`);
    }
    await cleanup.runNow('edge handshake');
    if (o.only.includes('proxy') && issued) {
      progress(`proxy bench: ${o.rounds} rounds of ${Math.max(1, Math.round(o.seconds))} s per side`);
      console.log(`${proxyTable(await runProxyBench({ stack: stack!, cert: issued.cert, cleanup, ...rounds }))}\n`);
    }
    if (o.only.includes('issuance')) {
      progress('issuance bench: the edge vs Caddy, then the burst');
      console.log(`${issuanceTable(await runIssuanceBench({ stack: stack!, cleanup, sampler }))}\n`);
    }
    if (o.only.includes('renewal')) {
      progress(`renewal bench: ${o.rounds} rounds`);
      console.log(`${renewalTable(await runRenewalBench({ workDir, cleanup, rounds: o.rounds, progress, sampler }))}\n`);
    }
    console.log(placementLines(sampler.samples));
    await finish(0, o.keep);
  } catch (error) {
    if (stopping) return; // interrupted: finish() is already stopping everything
    console.error(`bench failed: ${(error as Error).stack ?? error}`);
    await finish(1, true);
  }
}

void main();
