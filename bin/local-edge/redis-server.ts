import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { ManagedProcess, portAcceptsConnections, startProcess, waitFor } from './processes';

/** A redis-server on 127.0.0.1 with the append-only file on, so data survives a restart. */
export class RedisServer {
  private process?: ManagedProcess;

  constructor(readonly port: number, private readonly dir: string, private readonly extraArgs: string[] = []) {
    mkdirSync(dir, { recursive: true });
  }

  async start(): Promise<void> {
    this.process = startProcess('redis', 'redis-server', [
      '--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir,
      '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes', ...this.extraArgs,
    ], { logFile: path.join(this.dir, 'redis.log') });
    await waitFor(`redis on port ${this.port}`, () => portAcceptsConnections(this.port));
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }
}
