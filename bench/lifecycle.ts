// What the bench starts, and stopping it: servers by their stop function, load clients by PID.
import { spawn } from 'node:child_process';
import { isAlive, stopPid } from '../bin/local-edge/processes';

/** Stop steps, run last-registered first; safe to run twice (each step runs once). */
export class Cleanup {
  private readonly steps: Array<{ what: string; stop: () => Promise<void> | void }> = [];
  private readonly clients = new Set<number>();
  /** Set once run() began (Ctrl-C, an error, the end): nothing new may start after that. */
  private closed = false;

  /**
   * Registers how to stop something about to start (register first, then start). Throws once
   * run() has begun, so a bench interrupted mid-way starts nothing more while it is stopped.
   */
  add(what: string, stop: () => Promise<void> | void): void {
    if (this.closed) throw new Error(`stopping everything: not starting ${what}`);
    this.steps.push({ what, stop });
  }

  /** Runs a stop step now (e.g. an nginx no longer needed) instead of at the end. */
  async runNow(what: string): Promise<void> {
    const i = this.steps.map((s) => s.what).lastIndexOf(what);
    if (i < 0) return;
    const [step] = this.steps.splice(i, 1);
    await step.stop();
  }

  async run(): Promise<void> {
    this.closed = true;
    for (const pid of this.clients) await stopPid(pid, 'SIGTERM', 2000);
    this.clients.clear();
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.stop();
      } catch (error) {
        console.error(`bench: stopping ${step.what}: ${(error as Error).message}`);
      }
    }
  }

  /**
   * Runs a load client to completion (in its own process group, stopped by PID on Ctrl-C) and
   * returns its stdout; fails with its stderr when it exits non-zero or outlives timeoutMs.
   */
  runClient(command: string, args: string[], o: { timeoutMs: number; onStart?: (pid: number) => void }): Promise<string> {
    if (this.closed) return Promise.reject(new Error(`stopping everything: not starting ${command}`));
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const pid = child.pid;
      if (pid === undefined) {
        reject(new Error(`could not start ${command}`));
        return;
      }
      this.clients.add(pid);
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { err += d; });
      const timer = setTimeout(() => {
        if (isAlive(pid)) void stopPid(pid, 'SIGTERM', 2000);
      }, o.timeoutMs);
      o.onStart?.(pid);
      child.on('error', (error) => { clearTimeout(timer); this.clients.delete(pid); reject(error); });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.clients.delete(pid);
        if (code === 0) resolve(out);
        else reject(new Error(`${[command, ...args].join(' ')}: ${signal ? `killed by ${signal}` : `exit ${code}`}: ${(err || out).trim().slice(0, 800)}`));
      });
    });
  }
}
