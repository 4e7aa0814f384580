import { toLua } from '../../../charts/lua-literal';
import { OriginProxyOptions, renderOriginProxy } from '../../../charts/nginx-conf';
import { TestNginx } from './test-nginx';

export interface OriginProxyNginxOptions {
  /** Writable directory for its nginx.conf, logs and temp files. */
  readonly dir: string;
  /** Plain HTTP on 127.0.0.1: proxied to the origin, like the edge's HTTPS listener. */
  readonly port: number;
  /** Plain HTTP on 127.0.0.1: /ready (as the edge's status port) and the harness's /dns and /addresses. */
  readonly statusPort: number;
  readonly origin: OriginProxyOptions;
  /** CA file the origin's certificate must chain to. */
  readonly trustedCaFile: string;
  /** @default 2 (a pool per worker, as in the pods) */
  readonly workerProcesses?: number;
}

/**
 * A small real nginx (Debian's, with the lua module; no lua-resty-auto-ssl) proxying to the
 * origin with exactly what the edge's nginx.conf has for it: renderOriginProxy()'s map,
 * upstream, location directives, /ready and the `origin` config table, run by our
 * lua/edge/serve/origin.lua. Both listeners use reuseport, so new connections spread over the
 * workers. When run as root its workers run as www-data, like the local edge.
 */
export class OriginProxyNginx extends TestNginx {
  constructor(readonly options: OriginProxyNginxOptions) {
    super(options.dir);
  }

  protected readyPorts(): number[] {
    return [this.options.port, this.options.statusPort];
  }

  renderConf(): string {
    const o = this.options;
    const proxy = renderOriginProxy(o.origin, o.trustedCaFile);
    const indent = (lines: string[], by: string) => lines.map((l) => (l ? `${by}${l}` : ''));
    return [
      ...this.preamble({ writtenBy: 'origin-proxy-nginx.ts for origin-proxy.test.ts', workers: o.workerProcesses ?? 2, connections: 1024 }),
      '  lua_shared_dict edge_cache 1m;',
      '  lua_socket_log_errors off;',
      '  init_by_lua_block {',
      `    require("edge.serve.origin").init(${toLua(proxy.luaConfig, '    ')})`,
      '  }',
      '  init_worker_by_lua_block {',
      '    require("edge.serve.origin").init_worker()',
      '  }',
      ...indent(proxy.http, '  '),
      '  server {',
      `    listen 127.0.0.1:${o.port} reuseport;`,
      '    location / {',
      ...indent(proxy.location, '      '),
      '    }',
      '  }',
      '  server {',
      `    listen 127.0.0.1:${o.statusPort} reuseport;`,
      ...indent(proxy.readyLocation, '    '),
      '    location = /dns {',
      '      content_by_lua_block { require("origin_harness").dns() }',
      '    }',
      '    location = /addresses {',
      '      content_by_lua_block { require("origin_harness").addresses() }',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n');
  }

}
