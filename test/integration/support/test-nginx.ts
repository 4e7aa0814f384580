import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nginxBinary, nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from '../../../bin/local-edge/nginx-instance';
import { LUA_ROOT } from '../../../charts/lua-sources';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, stopPid, waitFor } from '../../../bin/local-edge/processes';

/**
 * A real nginx (Debian's, with the lua module) running an nginx.conf a test harness writes:
 * checked with `nginx -t`, run in the foreground as our child (so its PID is ours to stop),
 * ready once its ports accept connections. When run as root its workers run as www-data.
 */
/** Our harnesses' Lua (test/integration/support/lua/*.lua). */
const HARNESS_LUA_DIR = path.join(__dirname, 'lua');

export abstract class TestNginx {
  private process?: ManagedProcess;

  constructor(readonly dir: string) {}

  /** The whole nginx.conf. */
  abstract renderConf(): string;

  /** The ports that must accept connections before start() returns. */
  protected abstract readyPorts(): number[];

  /**
   * What every harness's nginx.conf starts with, up to and including `lua_package_path` inside
   * `http {`: the worker user when root, Debian's modules, logs and temp files in dir, and Lua
   * from luaDirs, then lua/ and the harnesses' directory (test/integration/support/lua).
   */
  protected preamble(o: { writtenBy: string; workers: number; connections: number; luaDirs?: string[] }): string[] {
    const luaDirs = [...(o.luaDirs ?? []), LUA_ROOT, HARNESS_LUA_DIR].map((d) => workerReadableDir(d, this.dir));
    return [
      `# Written by test/integration/support/${o.writtenBy}.`,
      ...(runningAsRoot() ? [`user ${WORKER_USER};`] : []),
      ...nginxModules().map((m) => `load_module ${m};`),
      `worker_processes ${o.workers};`,
      `pid ${this.dir}/nginx.pid;`,
      `error_log ${this.errorLogFile} info;`,
      `events { worker_connections ${o.connections}; }`,
      'http {',
      `  access_log ${this.dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${this.dir}/${t};`),
      `  lua_package_path "${luaDirs.map((d) => `${d}/?.lua`).join(';')};;";`,
    ];
  }

  /** `location = /<name>` blocks, each calling require(module).<name>(). */
  protected handlers(module: string, names: string[]): string[] {
    return names.flatMap((name) => [
      `    location = /${name} {`,
      `      content_by_lua_block { require("${module}").${name}() }`,
      '    }',
    ]);
  }

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
