import * as http from 'node:http';
import { TestNginx } from './test-nginx';

/** What the domains API harness's init() receives (see lua/domains_api_harness.lua). */
export interface DomainsApiHarnessConfig {
  /** The bearer token every call must carry (a throwaway value made by the test). */
  readonly token: string;
  readonly redis: {
    readonly host: string; readonly port: number; readonly prefix: string;
    readonly connect_timeout: number; readonly read_timeout: number;
  };
  readonly edge_hostnames: string[];
  readonly profile: string;
  /** The DNS pre-check (edge.policy.dns_precheck); absent: none, as an environment without it. */
  readonly dns_precheck?: { readonly resolver: string; readonly names: string[]; readonly addresses: string[]; readonly timeout: number };
}

/**
 * A real nginx (Debian's, with the lua module) running the domains API (edge.api.domains) the
 * way charts/nginx-conf.ts serves it, a server of its own with `location /v1/` and a 404 for
 * everything else, over edge.redis_storage and a real Redis. No lua-resty-auto-ssl, so it runs
 * on a fresh machine with Debian's packages. A second port (controlPort) takes the harness's
 * own calls (writing a name's state as the issuers do); the API's port never has them.
 */
export class DomainsApiNginx extends TestNginx {
  constructor(dir: string, readonly port: number, readonly controlPort: number, private readonly config: DomainsApiHarnessConfig) {
    super(dir);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected readyPorts(): number[] {
    return [this.port, this.controlPort];
  }

  renderConf(): string {
    return [
      ...this.preamble({ writtenBy: 'domains-api-nginx.ts for the domains API tests', workers: 2, connections: 256 }),
      '  lua_shared_dict edge_cache 1m;',
      '  lua_shared_dict edge_metrics 1m;',
      '  lua_socket_log_errors off;',
      '  init_by_lua_block {',
      `    require("domains_api_harness").init(require("cjson").decode([==[${JSON.stringify(this.config)}]==]))`,
      '  }',
      '  # As charts/nginx-conf.ts renders the API\'s server.',
      '  server {',
      `    listen 127.0.0.1:${this.port} reuseport;`,
      '    client_max_body_size 16k;',
      '    location /v1/ {',
      '      content_by_lua_block { require("domains_api_harness").handle() }',
      '    }',
      '    location / {',
      '      return 404;',
      '    }',
      '  }',
      '  server {',
      `    listen 127.0.0.1:${this.controlPort};`,
      '    location = /state {',
      '      content_by_lua_block { require("domains_api_harness").set_state() }',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n');
  }

  /** Writes a name's state with edge.store.domain_status.set (fields: false removes one). */
  setState(name: string, state: string, fields: Record<string, string | number | false> = {}): Promise<void> {
    const data = Buffer.from(JSON.stringify({ name, state, fields }));
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: this.controlPort, path: '/state', method: 'POST', agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`set state ${name} ${state}: HTTP ${res.statusCode}: ${text}`))));
      });
      req.on('error', reject);
      req.end(data);
    });
  }
}
