// Server CPU from /proc, CPU pinning, interleaved rounds and their statistics (npm run bench).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { childPids } from '../test/integration/support/leftovers';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'. Field 3 is index 0.
  return stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
}

/** CPU seconds a process has used in user and in kernel mode: /proc/<pid>/stat utime, stime. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const f = statFields(pid);
  return { user: Number(f[11]) / CLOCK_TICKS, system: Number(f[12]) / CLOCK_TICKS };
}

/** CPU seconds (user + system) a process has used: /proc/<pid>/stat utime + stime. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** The CPU a process last ran on (/proc/<pid>/stat field 39). */
export function lastCpu(pid: number): number {
  return Number(statFields(pid)[36]);
}

/** Cpus_allowed_list of a process, e.g. "0" or "0-1". */
export function allowedCpus(pid: number): string {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1] : '?';
}

/** The nginx worker processes of a master (its children whose title says so). */
export function nginxWorkers(masterPid: number): number[] {
  return childPids(masterPid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker process');
    } catch {
      return false;
    }
  });
}

/** The one worker of a `worker_processes 1` master. */
export function onlyWorker(masterPid: number): number {
  const workers = nginxWorkers(masterPid);
  if (workers.length !== 1) throw new Error(`nginx ${masterPid}: expected 1 worker, found ${workers.length}`);
  return workers[0];
}

/** Pins a process (all its threads) to a CPU list, as `taskset -a -p -c`. */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Pins an nginx master and its workers (workers it forks later inherit the master's). */
export function pinNginx(masterPid: number, cpus: string): void {
  pin(masterPid, cpus);
  for (const child of childPids(masterPid)) pin(child, cpus);
}

/** median, min and max of some numbers. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1] };
}

/** What one load run did: `ops` units of work (handshakes, requests) plus side figures. */
export interface LoadResult {
  readonly ops: number;
  readonly wallSeconds: number;
  readonly [figure: string]: number;
}

/** One server under test: the process whose CPU is counted, and how to load it. */
export interface Side {
  readonly label: string;
  readonly cpuPid: number;
  load(seconds: number): Promise<LoadResult>;
}

/** One side's figures in one round. */
export interface RoundResult extends LoadResult {
  readonly cpuSeconds: number;
  /** Server CPU per unit of work, in µs. */
  readonly cpuUsPerOp: number;
  /** Server CPU used / wall time (1 = one core busy all the time). */
  readonly busy: number;
  /** The kernel's share of the server CPU (stime / (utime + stime)). */
  readonly kernelShare: number;
}

async function measureOnce(side: Side, seconds: number): Promise<RoundResult> {
  const before = cpuTimes(side.cpuPid);
  const result = await side.load(seconds);
  const after = cpuTimes(side.cpuPid);
  const user = after.user - before.user;
  const system = after.system - before.system;
  const used = user + system;
  return {
    ...result, cpuSeconds: used, cpuUsPerOp: result.ops > 0 ? (used * 1e6) / result.ops : NaN,
    busy: used / result.wallSeconds, kernelShare: used > 0 ? system / used : NaN,
  };
}

/**
 * Interleaved rounds: in each round every side runs once, the order alternating from round to
 * round (so a drift of the machine's speed falls on both). A short warm-up run of each side
 * comes first and is not counted. Returns results[side][round].
 */
export async function interleavedRounds(sides: Side[], o: {
  rounds: number; seconds: number; warmupSeconds: number; onRound?: (round: number, results: RoundResult[]) => void;
}): Promise<RoundResult[][]> {
  for (const side of sides) await side.load(o.warmupSeconds);
  const results: RoundResult[][] = sides.map(() => []);
  for (let round = 0; round < o.rounds; round++) {
    const order = sides.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    const thisRound: RoundResult[] = [];
    for (const i of order) {
      const r = await measureOnce(sides[i], o.seconds);
      results[i].push(r);
      thisRound[i] = r;
    }
    o.onRound?.(round, thisRound);
  }
  return results;
}

/** Per-round ratios a/b of one figure, then their spread. */
export function ratioSpread(a: RoundResult[], b: RoundResult[], figure: (r: RoundResult) => number): Spread {
  return spread(a.map((r, i) => figure(r) / figure(b[i])));
}

/** Where a process may run and where it last ran: to show that the pinning took effect. */
export interface Placement {
  readonly label: string;
  readonly pid: number;
  readonly allowedCpus: string;
  readonly lastCpu: number;
}

export function placement(label: string, pid: number): Placement {
  try {
    return { label, pid, allowedCpus: allowedCpus(pid), lastCpu: lastCpu(pid) };
  } catch {
    return { label, pid, allowedCpus: 'gone', lastCpu: NaN };
  }
}

/** Samples the placement of some processes once per key, a moment into a load (while it runs). */
export class PlacementSampler {
  readonly samples: Placement[] = [];
  private readonly seen = new Set<string>();

  sampleOnce(key: string, processes: () => Array<[string, number]>, afterMs = 700): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    setTimeout(() => {
      for (const [label, pid] of processes()) this.samples.push(placement(label, pid));
    }, afterMs).unref();
  }
}

/** What a ChildSampler saw of one watched process. */
export interface ChildrenSeen {
  readonly label: string;
  readonly pid: number;
  /** Most live children seen in one sample. */
  readonly max: number;
  /** Names (comm) of the children seen, with how many samples saw each. */
  readonly names: Record<string, number>;
}

// Runs in a worker thread: scans /proc every intervalMs (no /proc/<pid>/task/*/children on
// every kernel) until the shared flag is set, then posts what it saw. A thread, not a process
// (which would be a child of something itself) nor the event loop (the probes' clock runs there).
const CHILD_SAMPLER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const flag = new Int32Array(workerData.flag);
const seen = workerData.pids.map(() => ({ max: 0, names: {} }));
let samples = 0;
const started = Date.now();
for (;;) {
  const counts = workerData.pids.map(() => 0);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\\d+$/.test(entry)) continue;
    let stat;
    try { stat = fs.readFileSync('/proc/' + entry + '/stat', 'utf8'); } catch { continue; }
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    const i = workerData.pids.indexOf(Number(ppid));
    if (i < 0 || state === 'Z') continue;
    counts[i]++;
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    seen[i].names[comm] = (seen[i].names[comm] || 0) + 1;
  }
  counts.forEach((n, i) => { if (n > seen[i].max) seen[i].max = n; });
  samples++;
  if (Atomics.wait(flag, 0, 0, workerData.intervalMs) !== 'timed-out') break;
}
parentPort.postMessage({ samples, seconds: (Date.now() - started) / 1000, seen });
`;

/** Samples the child processes of some processes (nginx workers, Caddy) every ~intervalMs, off the event loop. */
export class ChildSampler {
  private readonly flag = new SharedArrayBuffer(4);
  private readonly worker: Worker;
  private readonly result: Promise<{ samples: number; seconds: number; seen: Array<{ max: number; names: Record<string, number> }> }>;

  constructor(private readonly watched: Array<[string, number]>, intervalMs = 20) {
    this.worker = new Worker(CHILD_SAMPLER_SOURCE, { eval: true, workerData: { flag: this.flag, pids: watched.map(([, pid]) => pid), intervalMs } });
    this.result = new Promise((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
    });
  }

  /** Stops sampling; returns how many samples were taken over how long, and what each watched process had. */
  async stop(): Promise<{ samples: number; seconds: number; seen: ChildrenSeen[] }> {
    const flag = new Int32Array(this.flag);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const r = await this.result;
    await this.worker.terminate();
    return { samples: r.samples, seconds: r.seconds, seen: this.watched.map(([label, pid], i) => ({ label, pid, ...r.seen[i] })) };
  }
}
