import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalProfile, localNginxOptions } from '../../charts/local-profile';
import { renderNginxConf } from '../../charts/nginx-conf';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, stopPid, waitFor } from './processes';

/** Debian's nginx loads the Lua module dynamically; OpenResty has it built in. */
export function nginxModules(): string[] {
  const modules = ['/usr/lib/nginx/modules/ndk_http_module.so', '/usr/lib/nginx/modules/ngx_http_lua_module.so'];
  return modules.every((m) => existsSync(m)) ? modules : [];
}

/** nginx binary: $NGINX_BIN, else `nginx` on the PATH. */
export function nginxBinary(): string {
  return process.env.NGINX_BIN ?? 'nginx';
}

/** When nginx runs as root, its workers run as this user (the auto-ssl dir must be theirs). */
export const WORKER_USER = 'www-data';

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** One nginx "replica" running the nginx.conf our renderer makes with the local profile. */
export class NginxInstance {
  readonly confFile: string;
  private process?: ManagedProcess;

  constructor(readonly profile: LocalProfile, private readonly env: NodeJS.ProcessEnv) {
    this.confFile = path.join(profile.instance.dir, 'nginx.conf');
  }

  get name(): string {
    return this.profile.instance.name;
  }

  get dir(): string {
    return this.profile.instance.dir;
  }

  get errorLogFile(): string {
    return path.join(this.dir, 'error.log');
  }

  /** Renders nginx.conf and prepares the instance's directories. */
  prepare(): void {
    mkdirSync(path.join(this.dir, 'run'), { recursive: true });
    writeFileSync(this.confFile, renderNginxConf(localNginxOptions(this.profile)));
    if (runningAsRoot()) execFileSync('chown', ['-R', `${WORKER_USER}:`, this.dir]);
  }

  /** Starts the master in the foreground as our child (so its PID is ours to stop, and it is reaped). */
  async start(): Promise<void> {
    this.process = startProcess(`nginx-${this.name}`, nginxBinary(),
      ['-c', this.confFile, '-e', path.join(this.dir, 'startup.log'), '-g', 'daemon off;'],
      { env: this.env, logFile: path.join(this.dir, 'stdout.log') });
    await waitFor(`nginx ${this.name} status port`, async () => {
      if (!isAlive(this.process!.pid)) throw new Error(`nginx ${this.name} exited: see ${path.join(this.dir, 'startup.log')}`);
      return portAcceptsConnections(this.profile.instance.statusPort);
    });
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Stops nginx: SIGTERM (fast shutdown), or SIGQUIT (graceful, as the pods' STOPSIGNAL). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.process) await stopPid(this.process.pid, signal, 10000);
    this.process = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  errorLog(): string {
    return existsSync(this.errorLogFile) ? readFileSync(this.errorLogFile, 'utf8') : '';
  }

  /** Forgets this instance's local state (lua-resty-auto-ssl's working directory). */
  wipeState(): void {
    rmSync(path.join(this.dir, 'auto-ssl'), { recursive: true, force: true });
  }
}

/**
 * A directory of Lua modules the nginx workers can read: the directory itself, or, when nginx
 * runs as root and its workers (www-data) cannot reach the checkout, a readable copy in workDir.
 */
export function workerReadableDir(dir: string, workDir: string): string {
  if (!runningAsRoot()) return dir;
  try {
    execFileSync('runuser', ['-u', WORKER_USER, '--', 'ls', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    const copy = path.join(workDir, `readable-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`);
    rmSync(copy, { recursive: true, force: true });
    cpSync(dir, copy, { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    return copy;
  }
}
