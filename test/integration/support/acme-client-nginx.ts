import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nginxBinary, nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from '../../../bin/local-edge/nginx-instance';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, stopPid, waitFor } from '../../../bin/local-edge/processes';
import { LUA_ROOT } from '../../../charts/lua-sources';
import { HARNESS_LUA_DIR } from './harness-nginx';

export interface AcmeClientNginxOptions {
  /** Writable directory for its nginx.conf, logs and temp files. */
  readonly dir: string;
  /** Plain HTTP on 127.0.0.1: the harness's /register, /order, /orders, /directory, /tokens. */
  readonly apiPort: number;
  /** Plain HTTP on 127.0.0.1: /.well-known/acme-challenge/<token> (where pebble validates). */
  readonly challengePort: number;
  /** PEM bundle nginx trusts for the ACME servers' HTTPS (lua_ssl_trusted_certificate). */
  readonly trustedCaFile: string;
  /** DNS server for the ACME servers' names ("127.0.0.1:<port>"). */
  readonly resolver: string;
  /** Extra Lua module directories searched before lua/ (none in normal runs). */
  readonly extraLuaPath?: string[];
}

/**
 * A small real nginx (Debian's, with the lua module; no lua-resty-auto-ssl) running
 * edge.acme.client through test/integration/support/lua/acme_client_harness.lua. Two workers,
 * reuseport. When run as root its workers run as www-data, like the local edge.
 */
export class AcmeClientNginx {
  private process?: ManagedProcess;

  constructor(readonly options: AcmeClientNginxOptions) {}

  get dir(): string {
    return this.options.dir;
  }

  get errorLogFile(): string {
    return path.join(this.dir, 'error.log');
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  renderConf(): string {
    const o = this.options;
    const luaPath = [...(o.extraLuaPath ?? []), workerReadableDir(LUA_ROOT, this.dir), workerReadableDir(HARNESS_LUA_DIR, this.dir)]
      .map((d) => `${d}/?.lua`).join(';');
    const api = ['register', 'order', 'orders', 'directory', 'tokens'].map((name) => [
      `    location = /${name} {`,
      `      content_by_lua_block { require("acme_client_harness").${name}() }`,
      '    }',
    ].join('\n'));
    return [
      '# Written by test/integration/support/acme-client-nginx.ts for acme-client.test.ts.',
      ...(runningAsRoot() ? [`user ${WORKER_USER};`] : []),
      ...nginxModules().map((m) => `load_module ${m};`),
      'worker_processes 2;',
      `pid ${this.dir}/nginx.pid;`,
      `error_log ${this.errorLogFile} info;`,
      'events { worker_connections 1024; }',
      'http {',
      `  access_log ${this.dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${this.dir}/${t};`),
      `  lua_package_path "${luaPath};;";`,
      '  lua_shared_dict acme_challenges 1m;',
      '  lua_socket_log_errors off;',
      `  lua_ssl_trusted_certificate ${o.trustedCaFile};`,
      '  lua_ssl_verify_depth 3;',
      `  resolver ${o.resolver} ipv6=off valid=10s;`,
      '  resolver_timeout 2s;',
      '  client_body_buffer_size 256k;',
      '  client_max_body_size 256k;',
      '  server {',
      `    listen 127.0.0.1:${o.apiPort} reuseport;`,
      api.join('\n'),
      '  }',
      '  server {',
      `    listen 127.0.0.1:${o.challengePort} reuseport;`,
      '    location /.well-known/acme-challenge/ {',
      '      content_by_lua_block { require("acme_client_harness").challenge() }',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n');
  }

  /** Writes nginx.conf, checks it with `nginx -t`, starts nginx and waits for its ports. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    chmodSync(this.dir, 0o755);
    const conf = path.join(this.dir, 'nginx.conf');
    writeFileSync(conf, this.renderConf());
    if (runningAsRoot()) execFileSync('chown', ['-R', `${WORKER_USER}:`, this.dir]);
    execFileSync(nginxBinary(), ['-t', '-c', conf, '-e', path.join(this.dir, 'startup.log')], { stdio: 'pipe' });
    this.process = startProcess('nginx-acme-client', nginxBinary(),
      ['-c', conf, '-e', path.join(this.dir, 'startup.log'), '-g', 'daemon off;'],
      { logFile: path.join(this.dir, 'stdout.log') });
    await waitFor('acme-client nginx', async () => {
      if (!isAlive(this.process!.pid)) throw new Error(`nginx exited: see ${this.dir}/startup.log`);
      return (await portAcceptsConnections(this.options.apiPort)) && portAcceptsConnections(this.options.challengePort);
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
