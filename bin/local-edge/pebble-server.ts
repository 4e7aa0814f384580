import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { ChallTestSrv } from './challtestsrv';
import { KeyPair, makeCa, makeServerCert } from './pki';
import { ManagedProcess, portAcceptsConnections, startProcess, waitFor } from './processes';

/** A certificate serial as lower-case hex without leading zeros (pebble's log pads, TLS clients do not). */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

export interface PebblePorts {
  readonly acme: number;
  readonly management: number;
  readonly dns: number;
  readonly dnsManagement: number;
  /** Where pebble sends http-01 validation requests (the load balancer's HTTP port). */
  readonly validationHttp: number;
  readonly validationTls: number;
}

/**
 * Pebble, Let's Encrypt's test ACME server, with pebble-challtestsrv as its DNS server (every
 * name resolves to 127.0.0.1 unless `dns` is given records). Orders and accounts are counted
 * from pebble's own log.
 */
export class PebbleServer {
  private processes: ManagedProcess[] = [];
  /** Its DNS server (pebble-challtestsrv): the local edge's origin name is resolved there too. */
  readonly dns: ChallTestSrv;
  /** CA of pebble's own HTTPS API (not of the certificates it issues). */
  readonly apiCa: string;
  /** That CA's certificate and key: a stand-in in front of pebble gets its certificate from it, so clients trusting pebble trust it too. */
  readonly apiCaPair: KeyPair;
  private readonly apiCert: { cert: string; key: string };

  /**
   * env: extra environment for pebble, over the defaults below (e.g. PEBBLE_WFE_NONCEREJECT to
   * exercise a client's badNonce retries). certificateValiditySeconds: the lifetime of the
   * certificates it issues (pebble's certificateValidityPeriod), so renewals can happen inside a
   * test. @default pebble's own (5 years)
   */
  constructor(readonly ports: PebblePorts, private readonly dir: string, private readonly env: NodeJS.ProcessEnv = {},
    private readonly certificateValiditySeconds?: number) {
    const ca = makeCa(dir, 'pebble-api-ca');
    this.apiCaPair = ca;
    this.apiCa = ca.cert;
    chmodSync(this.apiCa, 0o644); // dehydrated, run by the nginx workers (www-data), trusts it
    this.apiCert = makeServerCert(dir, 'pebble-api', ca, ['IP:127.0.0.1', 'DNS:localhost']);
    this.dns = new ChallTestSrv({ dnsPort: ports.dns, managementPort: ports.dnsManagement, dir });
  }

  /** By name: nginx verifies the names in a certificate, not its IP addresses (resolved through challtestsrv). */
  get directoryUrl(): string {
    return `https://localhost:${this.ports.acme}/dir`;
  }

  private get logFile(): string {
    return path.join(this.dir, 'pebble.log');
  }

  async start(): Promise<void> {
    await this.dns.start();
    await this.startAcme();
  }

  /** Restarts pebble itself (its DNS keeps running): it forgets every account, order and root. */
  async restartAcme(): Promise<void> {
    const acme = this.processes.pop();
    await acme?.stop();
    await this.startAcme();
  }

  private async startAcme(): Promise<void> {
    const config = path.join(this.dir, 'pebble-config.json');
    writeFileSync(config, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${this.ports.acme}`,
        managementListenAddress: `127.0.0.1:${this.ports.management}`,
        certificate: this.apiCert.cert,
        privateKey: this.apiCert.key,
        httpPort: this.ports.validationHttp,
        tlsPort: this.ports.validationTls,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(this.certificateValiditySeconds ? { certificateValidityPeriod: this.certificateValiditySeconds } : {}),
      },
    }, null, 2));
    this.processes.push(startProcess('pebble', 'pebble', ['-config', config, '-dnsserver', `127.0.0.1:${this.ports.dns}`], {
      logFile: this.logFile,
      // No random nonce rejections (the tests count requests), no validation sleeps, and a
      // fresh authorization for every order (so a failing validation really fails each time).
      env: { ...process.env, PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', ...this.env },
    }));
    await waitFor('pebble', () => portAcceptsConnections(this.ports.acme), 15000);
    await waitFor('pebble management', () => portAcceptsConnections(this.ports.management), 15000);
  }

  private log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Orders pebble has received since it started. */
  orders(): number {
    return (this.log().match(/Added order "/g) ?? []).length;
  }

  /** Accounts pebble has created since it started. */
  accounts(): number {
    return (this.log().match(/There are now \d+ accounts in memory/g) ?? []).length;
  }

  /** Serials of the certificates pebble has issued: lower-case hex without leading zeros (as TLS clients show them). */
  issuedSerials(): string[] {
    return [...this.log().matchAll(/Issued certificate serial ([0-9a-f]+)/g)].map((m) => normalizeSerial(m[1]));
  }

  /** pebble's issuing root and intermediate (new at every start), as one PEM bundle. */
  async issuingChain(): Promise<string> {
    const get = (p: string) => new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: this.ports.management, path: p, ca: readFileSync(this.apiCa) }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${p}: HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
    return `${await get('/intermediates/0')}${await get('/roots/0')}`;
  }

  async stop(): Promise<void> {
    for (const p of this.processes.reverse()) await p.stop();
    this.processes = [];
    await this.dns.stop();
  }
}
