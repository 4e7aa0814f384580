import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nginxBinary, runningAsRoot, WORKER_USER } from '../../../bin/local-edge/nginx-instance';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, stopPid, waitFor } from '../../../bin/local-edge/processes';

/**
 * A real nginx (Debian's, with the lua module) running an nginx.conf a test harness writes:
 * checked with `nginx -t`, run in the foreground as our child (so its PID is ours to stop),
 * ready once its ports accept connections. When run as root its workers run as www-data.
 */
export abstract class TestNginx {
  private process?: ManagedProcess;

  constructor(readonly dir: string) {}

  /** The whole nginx.conf. */
  abstract renderConf(): string;

  /** The ports that must accept connections before start() returns. */
  protected abstract readyPorts(): number[];

  get errorLogFile(): string {
    return path.join(this.dir, 'error.log');
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    chmodSync(this.dir, 0o755);
    const conf = path.join(this.dir, 'nginx.conf');
    writeFileSync(conf, this.renderConf());
    if (runningAsRoot()) execFileSync('chown', ['-R', `${WORKER_USER}:`, this.dir]);
    const startupLog = path.join(this.dir, 'startup.log');
    execFileSync(nginxBinary(), ['-t', '-c', conf, '-e', startupLog], { stdio: 'pipe' });
    this.process = startProcess(`nginx ${path.basename(this.dir)}`, nginxBinary(), ['-c', conf, '-e', startupLog, '-g', 'daemon off;'],
      { logFile: path.join(this.dir, 'stdout.log') });
    await waitFor(`nginx in ${this.dir}`, async () => {
      if (!isAlive(this.process!.pid)) throw new Error(`nginx exited: see ${startupLog}`);
      for (const port of this.readyPorts()) if (!(await portAcceptsConnections(port))) return false;
      return true;
    }, 15000);
  }

  async stop(): Promise<void> {
    if (this.process) await stopPid(this.process.pid, 'SIGTERM', 10000);
    this.process = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
