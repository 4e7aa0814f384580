// Caddy (Debian's caddy 2.6) with on-demand TLS: the peer of the issuance bench. A Caddyfile
// written into the bench's work directory, `caddy run` pinned to a CPU, stopped by its PID.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, waitFor } from '../bin/local-edge/processes';

export const CADDY_BINARY = process.env.CADDY_BIN ?? 'caddy';

export interface CaddyOptions {
  readonly httpPort: number;
  readonly httpsPort: number;
  /** pebble's directory URL, and the CA file of pebble's own HTTPS API. */
  readonly acmeDirectory: string;
  readonly acmeApiCaFile: string;
  /** The domain check: Caddy 2.6 asks `GET <ask>?domain=<name>` and issues on a 2xx. */
  readonly askUrl: string;
}

/**
 * On-demand TLS as close to the edge as Caddy allows: ECDSA P-256 keys, http-01 only (TLS-ALPN
 * off), no OCSP stapling, certificates in a file_system storage of its own (a fresh directory:
 * the first name includes the account registration), admin API off, 127.0.0.1 only. The issuer
 * is set by `cert_issuer acme { ... }`: `acme_ca`/`acme_ca_root` alone cannot switch TLS-ALPN
 * off, and a site `tls { issuer acme }` conflicts with them on a catch-all site (caddy adapt).
 */
export function caddyfile(o: CaddyOptions, storageDir: string): string {
  return [
    '{',
    '\tadmin off',
    `\thttp_port ${o.httpPort}`,
    `\thttps_port ${o.httpsPort}`,
    '\tdefault_bind 127.0.0.1',
    '\tkey_type p256',
    '\tocsp_stapling off',
    '\tskip_install_trust',
    `\tstorage file_system {\n\t\troot ${storageDir}\n\t}`,
    `\ton_demand_tls {\n\t\task ${o.askUrl}\n\t}`,
    '\tcert_issuer acme {',
    `\t\tdir ${o.acmeDirectory}`,
    `\t\ttrusted_roots ${o.acmeApiCaFile}`,
    '\t\tdisable_tlsalpn_challenge',
    '\t}',
    '}',
    '',
    'https:// {',
    '\ttls {',
    '\t\ton_demand',
    '\t}',
    '\trespond "ok" 200',
    '}',
    '',
  ].join('\n');
}

export class CaddyServer {
  private process?: ManagedProcess;
  readonly configFile: string;
  readonly storageDir: string;

  constructor(readonly options: CaddyOptions, readonly dir: string) {
    this.configFile = path.join(dir, 'Caddyfile');
    this.storageDir = path.join(dir, 'storage');
  }

  get logFile(): string {
    return path.join(this.dir, 'caddy.log');
  }

  /** Writes the Caddyfile (checked with `caddy adapt`), starts Caddy on `cpus` and waits for both ports. */
  async start(cpus: string): Promise<void> {
    mkdirSync(this.storageDir, { recursive: true });
    writeFileSync(this.configFile, caddyfile(this.options, this.storageDir));
    // Its autosave, default data and config directories inside the work directory too.
    const env = { ...process.env, HOME: this.dir, XDG_DATA_HOME: path.join(this.dir, 'data'), XDG_CONFIG_HOME: path.join(this.dir, 'config') };
    execFileSync(CADDY_BINARY, ['adapt', '--config', this.configFile, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    // taskset execs caddy: the PID is Caddy's, and its Go runtime sees one CPU (GOMAXPROCS 1, as the one nginx worker).
    this.process = startProcess('caddy', 'taskset', ['-c', cpus, CADDY_BINARY, 'run', '--config', this.configFile, '--adapter', 'caddyfile'], {
      logFile: this.logFile, env, cwd: this.dir,
    });
    await waitFor(`caddy on ports ${this.options.httpPort} and ${this.options.httpsPort} (see ${this.logFile})`, async () => {
      if (!isAlive(this.process!.pid)) throw new Error(`caddy exited: see ${this.logFile}`);
      return (await portAcceptsConnections(this.options.httpsPort)) && portAcceptsConnections(this.options.httpPort);
    }, 15000);
  }

  get pid(): number {
    if (!this.process) throw new Error('caddy is not running');
    return this.process.pid;
  }

  /**
   * How long Caddy held each order in its internal rate limiter (certmagic: at most 10 orders
   * per 10 s per CA and account), from its log: name → ms, for the names it waited for.
   */
  rateLimiterWaits(): Record<string, number> {
    const waiting = new Map<string, number>();
    const waits: Record<string, number> = {};
    const log = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    for (const line of log.split('\n')) {
      if (!line.includes('internal rate limiter')) continue;
      try {
        const entry = JSON.parse(line) as { msg: string; ts: number; identifiers?: string[] };
        const name = entry.identifiers?.join(',') ?? '?';
        if (entry.msg.startsWith('waiting')) waiting.set(name, entry.ts);
        else if (entry.msg.startsWith('done waiting') && waiting.has(name)) {
          const ms = (entry.ts - waiting.get(name)!) * 1000;
          if (ms >= 1) waits[name] = ms;
        }
      } catch {
        // not a JSON log line
      }
    }
    return waits;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }
}

/** `caddy version`, e.g. "2.6.2". */
export function caddyVersion(): string {
  try {
    return execFileSync(CADDY_BINARY, ['version'], { encoding: 'utf8' }).trim().split(/\s+/)[0];
  } catch {
    return '?';
  }
}
