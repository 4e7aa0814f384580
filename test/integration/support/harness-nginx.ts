import * as path from 'node:path';
import { nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from '../../../bin/local-edge/nginx-instance';
import { LUA_ROOT } from '../../../charts/lua-sources';
import { TestNginx } from './test-nginx';

/** The test's Lua harness (test/integration/support/lua/edge_harness.lua). */
export const HARNESS_LUA_DIR = path.join(__dirname, 'lua');

/** What the harness's init() receives (see edge_harness.lua). */
export interface HarnessConfig {
  readonly redis: {
    readonly host: string; readonly port: number; readonly prefix: string;
    readonly connect_timeout: number; readonly read_timeout: number;
  };
  readonly domain_check: {
    readonly url: string; readonly timeout: number;
    readonly allow_ttl: number; readonly deny_ttl: number; readonly error_ttl: number;
  };
  readonly policy: {
    readonly edge_hostnames: string[]; readonly order_cooloff: number;
    readonly peer_wait: number; readonly order_timeout: number;
  };
}

/**
 * A real nginx (Debian's, with the lua module) running a small nginx.conf written here: our
 * modules from lua/ plus the harness, behind content handlers on one port. No
 * lua-resty-auto-ssl. When run as root its workers run as www-data, like the local edge.
 */
export class HarnessNginx extends TestNginx {
  constructor(dir: string, readonly port: number, private readonly config: HarnessConfig) {
    super(dir);
  }

  protected readyPorts(): number[] {
    return [this.port];
  }

  renderConf(): string {
    const modules = nginxModules();
    const locations = ['normalize', 'verdict', 'allow', 'cached_denial', 'account', 'storage', 'cert_changes', 'metrics'].map((name) => [
      `    location = /${name} {`,
      `      content_by_lua_block { require("edge_harness").${name}() }`,
      '    }',
    ].join('\n'));
    return [
      '# Written by test/integration/support/harness-nginx.ts for lua-in-nginx.test.ts.',
      ...(runningAsRoot() ? [`user ${WORKER_USER};`] : []),
      ...modules.map((m) => `load_module ${m};`),
      // Two workers: the shared-dict caches and locks must work across workers.
      'worker_processes 2;',
      `pid ${this.dir}/nginx.pid;`,
      `error_log ${this.errorLogFile} info;`,
      'events { worker_connections 256; }',
      'http {',
      `  access_log ${this.dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${this.dir}/${t};`),
      `  lua_package_path "${workerReadableDir(LUA_ROOT, this.dir)}/?.lua;${workerReadableDir(HARNESS_LUA_DIR, this.dir)}/?.lua;;";`,
      '  lua_shared_dict edge_cache 1m;',
      '  lua_shared_dict edge_metrics 1m;',
      '  # allow_domain.after_handshake looks for a certificate in auto-ssl\'s dict.',
      '  lua_shared_dict auto_ssl 1m;',
      '  lua_socket_log_errors off;',
      '  init_by_lua_block {',
      `    require("edge_harness").init(require("cjson").decode([==[${JSON.stringify(this.config)}]==]))`,
      '  }',
      '  server {',
      // reuseport: the kernel spreads connections over both workers, so concurrent requests
      // really meet in the shared dict from different workers.
      `    listen 127.0.0.1:${this.port} reuseport;`,
      locations.join('\n'),
      '  }',
      '}',
      '',
    ].join('\n');
  }

}
