import { nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from '../../../bin/local-edge/nginx-instance';
import { LUA_ROOT } from '../../../charts/lua-sources';
import { HARNESS_LUA_DIR } from './harness-nginx';
import { TestNginx } from './test-nginx';

/** The handlers of test/integration/support/lua/acme_crypto_harness.lua. */
export const ACME_CRYPTO_HANDLERS = ['key', 'from_pem', 'thumbprint', 'not_after', 'encodings', 'bad', 'coexist', 'long_cn', 'memory', 'bench'];

/**
 * A small real nginx (Debian's, with the lua module; no lua-resty-auto-ssl) whose content
 * handlers call lua/edge/acme/crypto.lua through acme_crypto_harness.lua. One worker, so
 * repeated requests (the memory check) meet the same process. When run as root its worker
 * runs as www-data, like the local edge.
 */
export class AcmeCryptoNginx extends TestNginx {
  constructor(dir: string, readonly port: number) {
    super(dir);
  }

  protected readyPorts(): number[] {
    return [this.port];
  }

  renderConf(): string {
    return [
      '# Written by test/integration/support/acme-crypto-nginx.ts for acme-crypto.test.ts.',
      ...(runningAsRoot() ? [`user ${WORKER_USER};`] : []),
      ...nginxModules().map((m) => `load_module ${m};`),
      'worker_processes 1;',
      `pid ${this.dir}/nginx.pid;`,
      `error_log ${this.errorLogFile} info;`,
      'events { worker_connections 64; }',
      'http {',
      `  access_log ${this.dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${this.dir}/${t};`),
      `  lua_package_path "${workerReadableDir(LUA_ROOT, this.dir)}/?.lua;${workerReadableDir(HARNESS_LUA_DIR, this.dir)}/?.lua;;";`,
      // Bodies (PEMs, JWKs) stay in memory: get_body_data() sees them.
      '  client_body_buffer_size 1m;',
      '  client_max_body_size 1m;',
      '  server {',
      `    listen 127.0.0.1:${this.port};`,
      ...ACME_CRYPTO_HANDLERS.map((name) => [
        `    location = /${name} {`,
        `      content_by_lua_block { require("acme_crypto_harness").${name}() }`,
        '    }',
      ].join('\n')),
      '  }',
      '}',
      '',
    ].join('\n');
  }

}
