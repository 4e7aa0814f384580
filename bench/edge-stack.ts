// The real parts the benchmarked edge needs (Redis, pebble with its DNS, the domain check), and
// edge instances: the project's own render (local profile) with one worker pinned to CPU 0.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalProfile } from '../charts/local-profile';
import { LUA_ROOT } from '../charts/lua-sources';
import { DomainCheckServer } from '../bin/local-edge/domain-check-server';
import { LoadBalancer } from '../bin/local-edge/load-balancer';
import { NginxInstance, nginxModules, runningAsRoot, WORKER_USER, workerReadableDir } from '../bin/local-edge/nginx-instance';
import { PebbleServer } from '../bin/local-edge/pebble-server';
import { KeyPair, makeCa, makeSelfSigned, makeServerCert } from '../bin/local-edge/pki';
import { freePort, waitFor } from '../bin/local-edge/processes';
import { httpGet } from '../test/integration/support/http-client';
import { RedisServer } from '../bin/local-edge/redis-server';
import { connectStore } from '../test/integration/support/store-client';
import { tlsProbe } from '../test/integration/support/tls-client';
import { Cleanup } from './lifecycle';
import { pinNginx } from './measure';

/** The CPU the measured nginx workers run on; clients and everything else run on the other. */
export const SERVER_CPU = '0';
export const CLIENT_CPU = '1';

/** The local profile's environment name: the Redis key prefix. */
export const STORE_PREFIX = 'local';

/** A certificate as the edge stored it (`<prefix>:<name>:latest`). */
export interface StoredCertificate {
  readonly name: string;
  readonly fullchain: string;
  readonly privkey: string;
  /** Files for a plain nginx's ssl_certificate / ssl_certificate_key. */
  readonly files: KeyPair;
  /** SHA-256 of the leaf, "AB:CD:..." (as Node and the handshake client print it). */
  readonly fingerprint256: string;
  readonly issuer: string;
  /** e.g. "EC prime256v1". */
  readonly keyType: string;
  /** Seconds the first handshake took (issuance through the edge). */
  readonly issuedInSeconds: number;
}

export class BenchStack {
  readonly domainCheck = new DomainCheckServer();
  redis!: RedisServer;
  pebble!: PebbleServer;
  /** Where pebble sends http-01 validation: the PROXY-protocol edge's HTTP port, with a PROXY header (as the NLB). */
  private validation!: LoadBalancer;
  private validationTargets: number[] = [];
  private fallback!: KeyPair;
  private edgeLuaDir!: string;
  /** The origin's test CA and its certificate (proxy bench), trusted by the edge and the reference. */
  originCa!: KeyPair;
  /** The edge's trusted CA file: pebble's API CA and the origin's test CA. */
  trustedCaFile!: string;
  /** pebble's issuing chain (new at every pebble start). */
  issuingChain!: string;

  private constructor(readonly workDir: string, private readonly autoSslTree: string, private readonly cleanup: Cleanup) {}

  static async start(workDir: string, autoSslTree: string, allowed: string[], cleanup: Cleanup): Promise<BenchStack> {
    const stack = new BenchStack(workDir, autoSslTree, cleanup);
    await stack.startAll(allowed);
    return stack;
  }

  private async startAll(allowed: string[]): Promise<void> {
    const c = this.cleanup;
    for (const name of allowed) this.domainCheck.allowed.add(name);
    await this.domainCheck.start();
    c.add('domain check', () => this.domainCheck.stop());

    this.validation = new LoadBalancer(() => this.validationTargets);
    await this.validation.start();
    c.add('validation load balancer', () => this.validation.stop());

    this.redis = new RedisServer(await freePort(), path.join(this.workDir, 'redis'));
    c.add('redis', () => this.redis.stop());
    await this.redis.start();

    this.pebble = await this.startPebble('pebble', this.validation.port);
    this.issuingChain = await this.pebble.issuingChain();

    this.originCa = makeCa(this.workDir, 'origin-ca');
    this.trustedCaFile = path.join(this.workDir, 'trusted-ca.pem');
    writeFileSync(this.trustedCaFile, readFileSync(this.pebble.apiCa, 'utf8') + readFileSync(this.originCa.cert, 'utf8'));
    this.fallback = makeSelfSigned(this.workDir, 'fallback', 'fallback.invalid');
    this.edgeLuaDir = workerReadableDir(LUA_ROOT, this.workDir);
  }

  /**
   * A pebble (+ its pebble-challtestsrv, every name at 127.0.0.1) in <workDir>/<label>, sending
   * http-01 validation to validationHttp; stopped by the cleanup (as `label`). The edges' is
   * `pebble`; a peer (Caddy) gets its own, since one pebble validates on one port.
   */
  async startPebble(label: string, validationHttp: number): Promise<PebbleServer> {
    const dir = path.join(this.workDir, label);
    mkdirSync(dir, { recursive: true });
    const pebble = new PebbleServer({
      acme: await freePort(), management: await freePort(), dns: await freePort(), dnsManagement: await freePort(),
      validationHttp, validationTls: await freePort(),
    }, dir);
    this.cleanup.add(label, () => pebble.stop());
    await pebble.start();
    return pebble;
  }

  /** A certificate for the origin's name, from the origin's test CA. */
  originCertificate(originName: string): KeyPair {
    return makeServerCert(this.workDir, 'origin', this.originCa, [`DNS:${originName}`, 'IP:127.0.0.1']);
  }

  /**
   * Starts an edge instance: renderNginxConf(localNginxOptions(profile)) with one worker, pinned
   * to SERVER_CPU. Stopped by the cleanup (or earlier with cleanup.runNow(`edge ${label}`)).
   */
  async startEdge(label: string, o: { proxyProtocol: boolean; originUrl: string; environment?: string }): Promise<NginxInstance> {
    const dir = path.join(this.workDir, `edge-${label}`);
    const profile: LocalProfile = {
      instance: { name: label, dir, httpPort: await freePort(), httpsPort: await freePort(), statusPort: await freePort(), apiPort: await freePort() },
      edgeLuaDir: this.edgeLuaDir,
      autoSslTree: this.autoSslTree,
      loadModules: nginxModules(),
      user: runningAsRoot() ? WORKER_USER : undefined,
      redisPort: this.redis.port,
      acmeDirectory: this.pebble.directoryUrl,
      acmeApiCaFile: this.pebble.apiCa,
      trustedCaFile: this.trustedCaFile,
      domainCheckUrl: this.domainCheck.url,
      originUrl: o.originUrl,
      // The origin's name resolves through pebble-challtestsrv.
      originResolver: this.pebble.dns.dnsAddress,
      fallbackCert: this.fallback.cert,
      fallbackKey: this.fallback.key,
      workerProcesses: 1,
      proxyProtocol: o.proxyProtocol,
      // The Redis key prefix, and so the ACME account (a new environment registers one).
      environment: o.environment,
    };
    const edge = new NginxInstance(profile, { ...process.env, REDIS_HOST: '127.0.0.1' });
    edge.prepare();
    this.cleanup.add(`edge ${label}`, async () => {
      await edge.stop();
      this.validationTargets = this.validationTargets.filter((p) => p !== profile.instance.httpPort);
    });
    await edge.start();
    pinNginx(edge.pid!, SERVER_CPU);
    await waitFor(`edge ${label} /healthz`, async () => (await httpGet(profile.instance.statusPort, '/healthz')).status === 200);
    if (o.proxyProtocol) this.validationTargets.push(profile.instance.httpPort);
    return edge;
  }

  /**
   * Has pebble issue a certificate for `name` through the edge (its first handshake, with the
   * PROXY header the edge expects), and returns it as stored in Redis.
   */
  async issue(edge: NginxInstance, name: string): Promise<StoredCertificate> {
    if (edge.profile.proxyProtocol === false) throw new Error('issue through an edge with PROXY protocol (pebble validates through a PROXY header)');
    const started = Date.now();
    const probe = await tlsProbe({
      port: edge.profile.instance.httpsPort, servername: name, ca: this.issuingChain,
      proxyFrom: { address: '198.51.100.20', port: 40000 }, timeoutMs: 90000,
    });
    const issuedInSeconds = (Date.now() - started) / 1000;
    if (!probe.verified) {
      throw new Error(`no certificate issued for ${name} through the edge: ${probe.error ?? probe.verifyError ?? 'not verified'}`
        + ` (see ${edge.errorLogFile} and ${path.join(this.workDir, 'pebble', 'pebble.log')})`);
    }
    const stored = await this.stored(name, issuedInSeconds, edge.profile.environment ?? STORE_PREFIX);
    if (stored.fingerprint256 !== probe.certificate?.fingerprint256) {
      throw new Error(`the edge served ${probe.certificate?.fingerprint256}, the store holds ${stored.fingerprint256}`);
    }
    return stored;
  }

  private async stored(name: string, issuedInSeconds: number, prefix: string): Promise<StoredCertificate> {
    const redis = await connectStore(this.redis.port);
    let value: string | null;
    try {
      value = await redis.get(`${prefix}:${name}:latest`);
    } finally {
      redis.disconnect();
    }
    if (!value) throw new Error(`no store entry ${prefix}:${name}:latest`);
    const entry = JSON.parse(value) as { fullchain_pem: string; privkey_pem: string };
    const files = { cert: path.join(this.workDir, `${name}.fullchain.pem`), key: path.join(this.workDir, `${name}.key`) };
    writeFileSync(files.cert, entry.fullchain_pem);
    writeFileSync(files.key, entry.privkey_pem, { mode: 0o600 });
    const leaf = new X509Certificate(entry.fullchain_pem);
    const key = createPrivateKey(entry.privkey_pem);
    return {
      name, fullchain: entry.fullchain_pem, privkey: entry.privkey_pem, files, issuedInSeconds,
      fingerprint256: leaf.fingerprint256,
      issuer: /CN=([^\n]+)/.exec(leaf.issuer)?.[1] ?? leaf.issuer,
      keyType: `${key.asymmetricKeyType?.toUpperCase()} ${key.asymmetricKeyDetails?.namedCurve ?? `${key.asymmetricKeyDetails?.modulusLength} bits`}`,
    };
  }
}

/** PIDs of nginx masters whose nginx.conf loads lua-resty-auto-ssl, except those with their conf under exceptUnder. */
export function otherAutoSslNginx(exceptUnder?: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!args[0].startsWith('nginx: master process')) continue;
      const conf = /-c\s+(\S+)/.exec(args.join(' '))?.[1];
      if (!conf || (exceptUnder && conf.startsWith(exceptUnder)) || !existsSync(conf)) continue;
      if (/auto-ssl|edge\.setup/.test(readFileSync(conf, 'utf8'))) found.push(Number(entry));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}
