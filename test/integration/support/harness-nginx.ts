import { TestNginx } from './test-nginx';


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
    const locations = this.handlers('edge_harness',
      ['normalize', 'verdict', 'allow', 'cached_denial', 'account', 'storage', 'cert_changes', 'metrics']);
    return [
      // Two workers: the shared-dict caches and locks must work across workers.
      ...this.preamble({ writtenBy: 'harness-nginx.ts for lua-in-nginx.test.ts', workers: 2, connections: 256 }),
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
      ...locations,
      '  }',
      '}',
      '',
    ].join('\n');
  }

}
