import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LOCAL_API_TOKEN_ENV, LocalProfile } from '../../charts/local-profile';
import { LUA_ROOT } from '../../charts/lua-sources';
import { AutoSslTree } from './auto-ssl-tree';
import { DomainCheckServer } from './domain-check-server';
import { LoadBalancer } from './load-balancer';
import { NginxInstance, nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from './nginx-instance';
import { OriginServer } from './origin-server';
import { PebbleServer } from './pebble-server';
import { makeCa, makeSelfSigned, makeServerCert } from './pki';
import { freePort } from './processes';
import { RedisServer } from './redis-server';

/** The origin stand-in's host name, resolved through pebble's DNS (pebble-challtestsrv). */
export const LOCAL_ORIGIN_HOST = 'origin.local.test';

/**
 * What customers' names must point at for the DNS pre-check: a published name to CNAME to, and
 * the address everything resolves to in pebble's DNS (pebble-challtestsrv's default answer).
 */
export const LOCAL_PUBLISHED_NAME = 'edge.local.test';
export const LOCAL_EDGE_ADDRESS = '127.0.0.1';

export interface LocalEdgeOptions {
  /** Working directory for every server's files; created. */
  readonly workDir: string;
  readonly autoSslTree: AutoSslTree;
  /** Fixed ports for a person's use; tests leave them out and get free ports. */
  readonly ports?: { readonly http: number; readonly https: number };
  /** Seconds between two orders of one name. @default 30 */
  readonly orderCooloffSeconds?: number;
  /** Domain-check timeout. @default 1000 */
  readonly domainCheckTimeoutMs?: number;
  /** Names the domain-check endpoint allows at start. @default [] */
  readonly allowedDomains?: string[];
  /** Lifetime of the certificates pebble issues, so tests can watch renewals. @default pebble's (5 years) */
  readonly certificateValiditySeconds?: number;
  /** Renewal settings of both instances (tests shorten the pass interval and the lease). @default the local profile's */
  readonly renewal?: LocalProfile['renewal'];
  /**
   * Puts something in front of pebble (a test's stand-in for ACME features pebble lacks): given
   * the running pebble, returns the ACME directory URL the instances use. @default pebble's own
   */
  readonly acmeFront?: (pebble: PebbleServer) => Promise<string>;
}

/**
 * The whole edge on one machine, every server on 127.0.0.1: Redis, pebble and its DNS, a
 * domain-check endpoint, an HTTPS origin (https://origin.local.test:<port>, its name in pebble's
 * DNS, its certificate from a test CA nginx trusts), two nginx instances running our rendered
 * nginx.conf, and a load balancer in front of them that speaks PROXY protocol like the NLB.
 */
export class LocalEdge {
  readonly instances: NginxInstance[] = [];
  readonly domainCheck = new DomainCheckServer();
  origin!: OriginServer;
  redis!: RedisServer;
  pebble!: PebbleServer;
  http!: LoadBalancer;
  https!: LoadBalancer;
  /** pebble's issuing chain of this run: what clients verify issued certificates against. */
  issuingChainFile!: string;
  /** Bearer token of both instances' domains API (random per run; never logged). */
  readonly apiToken = randomBytes(24).toString('hex');
  /** The same token in a file only its owner can read (for `EDGE_API_TOKEN=$(cat ...)`). */
  apiTokenFile!: string;

  private constructor(private readonly options: LocalEdgeOptions) {}

  static async start(options: LocalEdgeOptions): Promise<LocalEdge> {
    const edge = new LocalEdge(options);
    try {
      await edge.startAll();
    } catch (error) {
      await edge.stop();
      throw error;
    }
    return edge;
  }

  private async startAll(): Promise<void> {
    const o = this.options;
    mkdirSync(o.workDir, { recursive: true });
    if (runningAsRoot()) chmodSync(o.workDir, 0o755);
    this.apiTokenFile = path.join(o.workDir, 'api-token');
    writeFileSync(this.apiTokenFile, this.apiToken, { mode: 0o600 });
    for (const name of o.allowedDomains ?? []) this.domainCheck.allowed.add(name);
    await this.domainCheck.start();
    const originCa = makeCa(o.workDir, 'origin-ca');
    this.origin = new OriginServer({ tls: makeServerCert(o.workDir, 'origin', originCa, [`DNS:${LOCAL_ORIGIN_HOST}`]) });
    await this.origin.start();

    // The instances are created below, once pebble's ports are known: look them up per connection.
    this.http = new LoadBalancer(() => this.instances.map((i) => i.profile.instance.httpPort));
    this.https = new LoadBalancer(() => this.instances.map((i) => i.profile.instance.httpsPort));
    await this.http.start(o.ports?.http ?? 0);
    await this.https.start(o.ports?.https ?? 0);

    this.redis = new RedisServer(await freePort(), path.join(o.workDir, 'redis'));
    await this.redis.start();

    const pebbleDir = path.join(o.workDir, 'pebble');
    mkdirSync(pebbleDir, { recursive: true });
    this.pebble = new PebbleServer({
      acme: await freePort(), management: await freePort(), dns: await freePort(), dnsManagement: await freePort(),
      validationHttp: this.http.port, validationTls: this.https.port,
    }, pebbleDir, {}, o.certificateValiditySeconds);
    await this.pebble.start();
    const acmeDirectory = o.acmeFront ? await o.acmeFront(this.pebble) : this.pebble.directoryUrl;
    this.issuingChainFile = path.join(pebbleDir, 'issuing-chain.pem');
    writeFileSync(this.issuingChainFile, await this.pebble.issuingChain());
    await this.pebble.dns.setA(LOCAL_ORIGIN_HOST, ['127.0.0.1']);
    // nginx trusts one CA file: pebble's API CA (for our Lua) and the origin's test CA.
    const trustedCaFile = path.join(o.workDir, 'trusted-cas.pem');
    writeFileSync(trustedCaFile, readFileSync(this.pebble.apiCa, 'utf8') + readFileSync(originCa.cert, 'utf8'));
    chmodSync(trustedCaFile, 0o644);

    const fallback = makeSelfSigned(o.workDir, 'fallback', 'fallback.invalid');
    const edgeLuaDir = workerReadableDir(LUA_ROOT, o.workDir);
    for (const name of ['a', 'b']) {
      const instance = new NginxInstance({
        instance: {
          name, dir: path.join(o.workDir, `nginx-${name}`),
          httpPort: await freePort(), httpsPort: await freePort(), statusPort: await freePort(), apiPort: await freePort(),
        },
        edgeLuaDir,
        autoSslTree: o.autoSslTree.root,
        loadModules: nginxModules(),
        user: runningAsRoot() ? WORKER_USER : undefined,
        redisPort: this.redis.port,
        acmeDirectory,
        acmeApiCaFile: this.pebble.apiCa,
        trustedCaFile,
        domainCheckUrl: this.domainCheck.url,
        originUrl: `https://${LOCAL_ORIGIN_HOST}:${this.origin.port}`,
        originResolver: this.pebble.dns.dnsAddress,
        fallbackCert: fallback.cert,
        fallbackKey: fallback.key,
        orderCooloffSeconds: o.orderCooloffSeconds,
        domainCheckTimeoutMs: o.domainCheckTimeoutMs,
        renewal: o.renewal,
        dnsPrecheck: { names: [LOCAL_PUBLISHED_NAME], addresses: [LOCAL_EDGE_ADDRESS] },
      }, { ...process.env, REDIS_HOST: '127.0.0.1', [LOCAL_API_TOKEN_ENV]: this.apiToken });
      instance.prepare();
      this.instances.push(instance);
    }
    for (const instance of this.instances) await instance.start();
  }

  /** Stops everything this edge started, each by its PID; safe to call twice. */
  async stop(): Promise<void> {
    const steps: Array<() => Promise<void> | undefined> = [
      ...this.instances.map((i) => () => i.stop()),
      () => this.http?.stop(),
      () => this.https?.stop(),
      () => this.pebble?.stop(),
      () => this.redis?.stop(),
      () => this.domainCheck.stop(),
      () => this.origin?.stop(),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (error) {
        console.error(`local edge: stopping: ${(error as Error).message}`);
      }
    }
  }
}
