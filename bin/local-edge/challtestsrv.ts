import * as dns from 'node:dns';
import * as http from 'node:http';
import * as path from 'node:path';
import { ManagedProcess, portAcceptsConnections, startProcess, waitFor } from './processes';

export interface ChallTestSrvOptions {
  /** UDP and TCP port of its DNS server on 127.0.0.1. */
  readonly dnsPort: number;
  /** Port of its management API (HTTP) on 127.0.0.1. */
  readonly managementPort: number;
  /**
   * A records for names without their own ("" for none). pebble validates every name at
   * 127.0.0.1; tests that move an origin between addresses set explicit records and want no
   * default to hide a missing one. @default "127.0.0.1"
   */
  readonly defaultIPv4?: string;
  /** Directory for its log file. */
  readonly dir: string;
}

/**
 * pebble-challtestsrv as a DNS server only (its HTTP-01/TLS-ALPN-01 servers off), with its
 * management API: A records, CNAMEs and SERVFAIL answers per name. It answers with TTL 0, one
 * level of CNAME, and without name compression.
 */
export class ChallTestSrv {
  private process?: ManagedProcess;

  constructor(readonly options: ChallTestSrvOptions) {}

  get dnsPort(): number {
    return this.options.dnsPort;
  }

  /** "127.0.0.1:<dns port>", as a resolver setting. */
  get dnsAddress(): string {
    return `127.0.0.1:${this.options.dnsPort}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async start(): Promise<void> {
    this.process = startProcess('pebble-challtestsrv', 'pebble-challtestsrv', [
      '-defaultIPv4', this.options.defaultIPv4 ?? '127.0.0.1', '-defaultIPv6', '',
      '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-dns01', this.dnsAddress, '-management', `127.0.0.1:${this.options.managementPort}`,
    ], { logFile: path.join(this.options.dir, 'challtestsrv.log') });
    await waitFor('pebble-challtestsrv management', () => portAcceptsConnections(this.options.managementPort), 15000);
    await waitFor('pebble-challtestsrv DNS', () => this.answers(), 15000);
  }

  /** Whether its DNS server answers (any answer, even "no such record"). */
  private async answers(): Promise<boolean> {
    const resolver = new dns.promises.Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([this.dnsAddress]);
    try {
      await resolver.resolve4('probe.challtestsrv.invalid');
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code !== dns.TIMEOUT && code !== dns.CONNREFUSED && code !== 'ECONNREFUSED';
    }
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Replaces the A records of host (a name, with or without the trailing dot). */
  async setA(host: string, addresses: string[]): Promise<void> {
    await this.post('/clear-a', { host: fqdn(host) });
    if (addresses.length > 0) await this.post('/add-a', { host: fqdn(host), addresses });
  }

  async setCname(host: string, target: string): Promise<void> {
    await this.post('/set-cname', { host: fqdn(host), target: fqdn(target) });
  }

  async clearCname(host: string): Promise<void> {
    await this.post('/clear-cname', { host: fqdn(host) });
  }

  /** Answers every question about host with SERVFAIL until cleared. */
  async setServfail(host: string): Promise<void> {
    await this.post('/set-servfail', { host: fqdn(host) });
  }

  async clearServfail(host: string): Promise<void> {
    await this.post('/clear-servfail', { host: fqdn(host) });
  }

  private post(pathname: string, body: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: this.options.managementPort, path: pathname, method: 'POST', agent: false,
        headers: { 'Content-Type': 'application/json' },
      }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`challtestsrv ${pathname}: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }
}

function fqdn(host: string): string {
  return host.endsWith('.') ? host : `${host}.`;
}
