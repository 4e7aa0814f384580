import { sleep } from '../../../bin/local-edge/processes';

/**
 * Polls probe (every stepMs) until it returns a value other than undefined, and returns it;
 * throws, naming what was awaited, if none came within timeoutMs.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(stepMs);
  }
}
