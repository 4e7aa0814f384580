import { TestNginx } from './test-nginx';

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
export class AcmeClientNginx extends TestNginx {
  constructor(readonly options: AcmeClientNginxOptions) {
    super(options.dir);
  }

  protected readyPorts(): number[] {
    return [this.options.apiPort, this.options.challengePort];
  }

  renderConf(): string {
    const o = this.options;
    const api = this.handlers('acme_client_harness', ['register', 'order', 'orders', 'directory', 'tokens', 'provider_issue', 'renewal_info']);
    return [
      ...this.preamble({ writtenBy: 'acme-client-nginx.ts for acme-client.test.ts', workers: 2, connections: 1024, luaDirs: o.extraLuaPath }),
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
      ...api,
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

}
