/**
 * Says that tests are skipped, and why, on the runner's own output: jest does not show the
 * console output of a suite whose tests were all skipped.
 */
export function reportSkipped(what: string, reason: string): void {
  process.stderr.write(`SKIPPED: ${what}: ${reason}\n`);
}
