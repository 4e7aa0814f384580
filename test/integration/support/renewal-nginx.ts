import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { TestNginx } from './test-nginx';

/** What the renewal harness's init() receives (see lua/renewal_harness.lua). */
export interface RenewalHarnessConfig {
  readonly redis: { readonly host: string; readonly port: number; readonly connect_timeout: number; readonly read_timeout: number };
  readonly domain_check: { readonly url: string; readonly timeout: number };
  /** Given: worker 0 runs edge.renewal.job over this prefix, with the stand-ins. */
  readonly job?: {
    readonly prefix: string; readonly lease_ttl: number; readonly pass_interval: number; readonly renewals_per_hour: number;
    /** The stand-in issuer's mode (default "ok"). */
    readonly issuer?: 'ok' | 'slow';
  };
}

/**
 * A real nginx (Debian's, with the lua module) running the renewal harness: our modules from
 * lua/ behind content handlers on one port, without lua-resty-auto-ssl. One worker by default
 * (the lease objects a test drives live in the worker); with a job, worker 0 of each instance
 * takes part in the renewer lease.
 */
export class RenewalNginx extends TestNginx {
  constructor(dir: string, readonly port: number, private readonly config: RenewalHarnessConfig, private readonly workers = 1) {
    super(dir);
  }

  protected readyPorts(): number[] {
    return [this.port];
  }

  renderConf(): string {
    return [
      ...this.preamble({ writtenBy: 'renewal-nginx.ts for renewal.test.ts', workers: this.workers, connections: 256 }),
      '  lua_shared_dict edge_cache 1m;',
      '  lua_shared_dict edge_metrics 1m;',
      '  lua_socket_log_errors off;',
      '  client_body_buffer_size 1m;',
      '  client_max_body_size 1m;',
      '  init_by_lua_block {',
      `    require("renewal_harness").init(require("cjson").decode([==[${JSON.stringify(this.config)}]==]))`,
      '  }',
      '  init_worker_by_lua_block { require("renewal_harness").init_worker() }',
      '  server {',
      `    listen 127.0.0.1:${this.port}${this.workers > 1 ? ' reuseport' : ''};`,
      ...this.handlers('renewal_harness', ['pass', 'store', 'lease', 'metrics', 'whoami']),
      '  }',
      '}',
      '',
    ].join('\n');
  }
}

/** POST a JSON body to 127.0.0.1:<port><path>; expects 200 and a JSON reply. */
export function postJson<T = any>(port: number, urlPath: string, body: unknown): Promise<T> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, timeout: 60000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length, Connection: 'close' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`POST ${urlPath}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
        else resolve(JSON.parse(text) as T);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** A certificate with the validity it was made with, as auto-ssl's entry JSON. */
export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  /** notBefore and notAfter, Unix seconds. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The ARI certificate identifier (RFC 9773 4.1), worked out here from openssl's output. */
  readonly certId: string;
  /** lua-resty-auto-ssl's entry: fullchain_pem, privkey_pem, cert_pem, expiry. */
  readonly entry: string;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8');
}

function opensslTime(unix: number): string {
  return new Date(unix * 1000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
}

const base64url = (bytes: Buffer) => bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/**
 * A throwaway CA (`openssl ca`) that signs ECDSA certificates with any notBefore and notAfter
 * (OpenSSL 3.0's `x509 -days` starts every certificate now), each with a serial the caller may choose.
 */
export class TestCa {
  private readonly caCert: string;
  private readonly caKey: string;
  private readonly leafKey: string;
  private readonly csr: string;
  private count = 0;

  constructor(private readonly dir: string) {
    mkdirSync(path.join(dir, 'issued'), { recursive: true });
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'ca.cnf'), [
      '[ ca ]', 'default_ca = test_ca',
      '[ test_ca ]', `dir = ${dir}`, `database = ${dir}/index.txt`, `new_certs_dir = ${dir}/issued`,
      `serial = ${dir}/serial`, 'default_md = sha256', 'policy = anything', 'unique_subject = no',
      'copy_extensions = none', 'x509_extensions = leaf',
      '[ anything ]', 'commonName = supplied',
      '[ leaf ]', 'basicConstraints = critical,CA:false', 'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid', 'subjectAltName = DNS:renewal.test.example', 'extendedKeyUsage = serverAuth', '',
    ].join('\n'));
    this.caCert = path.join(dir, 'ca.pem');
    this.caKey = path.join(dir, 'ca.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
      '-subj', '/CN=renewal test CA (throwaway)', '-keyout', this.caKey, '-out', this.caCert], dir);
    // One key for every leaf: the renewer never looks at it.
    this.leafKey = path.join(dir, 'leaf.key');
    this.csr = path.join(dir, 'leaf.csr');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=renewal.test.example',
      '-keyout', this.leafKey, '-out', this.csr], dir);
  }

  /** A certificate valid from notBefore to notAfter (Unix seconds); serial: hex, even length (default random, 16 bytes). */
  issue(notBefore: number, notAfter: number, serial = randomBytes(16).toString('hex')): TestCert {
    this.count += 1;
    const out = path.join(this.dir, `leaf-${this.count}.pem`);
    writeFileSync(path.join(this.dir, 'serial'), `${serial}\n`);
    openssl(['ca', '-batch', '-config', path.join(this.dir, 'ca.cnf'), '-cert', this.caCert, '-keyfile', this.caKey,
      '-in', this.csr, '-out', out, '-notext', '-startdate', opensslTime(notBefore), '-enddate', opensslTime(notAfter)], this.dir);
    const certPem = readFileSync(out, 'utf8');
    const keyPem = readFileSync(this.leafKey, 'utf8');
    const akid = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(openssl(['x509', '-in', out, '-noout', '-ext', 'authorityKeyIdentifier'], this.dir))![1];
    let serialHex = /serial=([0-9A-F]+)/i.exec(openssl(['x509', '-in', out, '-noout', '-serial'], this.dir))![1];
    if (serialHex.length % 2) serialHex = `0${serialHex}`;
    let serialBytes = Buffer.from(serialHex, 'hex');
    // The DER INTEGER's content octets: a leading zero octet when the high bit is set.
    if (serialBytes[0] >= 0x80) serialBytes = Buffer.concat([Buffer.from([0]), serialBytes]);
    const certId = `${base64url(Buffer.from(akid.replace(/:/g, ''), 'hex'))}.${base64url(serialBytes)}`;
    const entry = JSON.stringify({
      fullchain_pem: certPem + readFileSync(this.caCert, 'utf8'), privkey_pem: keyPem, cert_pem: certPem, expiry: notAfter,
    });
    return { certPem, keyPem, notBefore, notAfter, certId, entry };
  }
}
