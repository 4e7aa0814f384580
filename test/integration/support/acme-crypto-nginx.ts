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
      ...this.preamble({ writtenBy: 'acme-crypto-nginx.ts for acme-crypto.test.ts', workers: 1, connections: 64 }),
      // Bodies (PEMs, JWKs) stay in memory: get_body_data() sees them.
      '  client_body_buffer_size 1m;',
      '  client_max_body_size 1m;',
      '  server {',
      `    listen 127.0.0.1:${this.port};`,
      ...this.handlers('acme_crypto_harness', ACME_CRYPTO_HANDLERS),
      '  }',
      '}',
      '',
    ].join('\n');
  }

}
