import { readdirSync, readFileSync, rmSync } from 'node:fs';

/**
 * Live processes (not zombies) whose command line mentions `text`, e.g. a test's work
 * directory: every server a suite starts is given a path in it (nginx -c, redis --dir, pebble
 * -config). Used after stopping everything, to prove nothing was left running.
 */
export function processesMentioning(text: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state !== 'Z' && cmdline.includes(text)) found.push({ pid: Number(entry), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** The PIDs of a process's live children (an nginx master's workers), sorted. */
export function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces, so parse after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === parent && state !== 'Z') children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children.sort((x, y) => x - y);
}

/**
 * A suite's end: runs every stop step (each by PID or close; one failing does not skip the
 * rest), removes the work directory (unless KEEP_INTEGRATION_DIR), and throws if any process
 * that mentions it still runs.
 */
export async function stopEverything(work: string, steps: Array<() => Promise<unknown> | unknown>): Promise<void> {
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      console.error(`stopping: ${(error as Error).message}`);
    }
  }
  const left = processesMentioning(work);
  if (!process.env.KEEP_INTEGRATION_DIR) rmSync(work, { recursive: true, force: true });
  if (left.length > 0) throw new Error(`still running after stop: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
}
