import { NginxConfOptions, ORIGIN_PROXY_DEFAULTS, RENEWAL_PASS_INTERVAL_SECONDS, RENEWER_LEASE_TTL_SECONDS } from './nginx-conf';

/** Where one local edge instance listens and keeps its files. */
export interface LocalInstance {
  /** Instance name, e.g. "a" (used in file names). */
  readonly name: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly statusPort: number;
  /** The domains API. */
  readonly apiPort: number;
  /** Writable directory of this instance (pid, temp files, logs, auto-ssl state). */
  readonly dir: string;
}

/** The local edge (`npm run edge:local` and the integration tests): real parts on 127.0.0.1. */
export interface LocalProfile {
  readonly instance: LocalInstance;
  /** The repository's lua/ directory. */
  readonly edgeLuaDir: string;
  /** Root of the luarocks-style tree holding lua-resty-auto-ssl ($AUTO_SSL_TREE). */
  readonly autoSslTree: string;
  /** Dynamic modules Debian's nginx needs (ndk, then lua), by absolute path. */
  readonly loadModules: string[];
  /** "www-data" when nginx runs as root; undefined when it runs as an ordinary user. */
  readonly user?: string;
  readonly redisPort: number;
  readonly acmeDirectory: string;
  /** CA of the test ACME server's own HTTPS API (trusted by Lua). */
  readonly acmeApiCaFile: string;
  readonly domainCheckUrl: string;
  /** The origin stand-in, e.g. `https://origin.local.test:<port>` (its name resolved through originResolver). */
  readonly originUrl: string;
  /** DNS server "ip:port" for the origin's name (pebble-challtestsrv's). Not needed when originUrl holds an IP literal. */
  readonly originResolver?: string;
  /** CA bundle nginx and our Lua trust (the origin's certificate among them). @default acmeApiCaFile */
  readonly trustedCaFile?: string;
  readonly fallbackCert: string;
  readonly fallbackKey: string;
  /** Environment name (the Redis key prefix). @default "local" */
  readonly environment?: string;
  /** Seconds between orders of one name. @default 30 (short, so tests can see it end) */
  readonly orderCooloffSeconds?: number;
  /** Domain-check timeout. @default 1000 */
  readonly domainCheckTimeoutMs?: number;
  /** Whether the HTTP/HTTPS listeners expect a PROXY protocol header. @default true (like the NLB; a benchmark's wrk cannot send one) */
  readonly proxyProtocol?: boolean;
  /** nginx `worker_processes`. @default 2 (a benchmark pins 1 worker to one core) */
  readonly workerProcesses?: number;
  /** What customer names must point at before an order (resolved through originResolver). @default no pre-check */
  readonly dnsPrecheck?: { readonly names: string[]; readonly addresses: string[] };
  /** Renewal settings; tests shorten the pass interval and the lease. @default classic, 60 per hour, the pods' interval and TTL */
  readonly renewal?: Partial<NginxConfOptions['renewal']>;
}

/** Environment variable holding the domains API token of a local instance. */
export const LOCAL_API_TOKEN_ENV = 'EDGE_API_TOKEN';

/** nginx options of a local edge instance: the same renderer as the pods, local paths and ports. */
export function localNginxOptions(p: LocalProfile): NginxConfOptions {
  const i = p.instance;
  return {
    environment: p.environment ?? 'local',
    workerProcesses: p.workerProcesses ?? 2,
    user: p.user,
    loadModules: p.loadModules,
    runDir: `${i.dir}/run`,
    errorLog: { path: `${i.dir}/error.log`, level: 'info' },
    accessLog: `${i.dir}/access.log`,
    listen: { address: '127.0.0.1', http: i.httpPort, https: i.httpsPort, status: i.statusPort, api: i.apiPort },
    domainsApi: { tokenEnv: LOCAL_API_TOKEN_ENV },
    dnsPrecheck: p.dnsPrecheck && p.originResolver ? { resolver: p.originResolver, ...p.dnsPrecheck } : undefined,
    proxyProtocol: p.proxyProtocol ?? true,
    realIpFrom: ['127.0.0.1'],
    // The test DNS (challtestsrv) when given: it names the ACME server (localhost) and the origin.
    resolver: p.originResolver ?? '127.0.0.1',
    trustedCaFile: p.trustedCaFile ?? p.acmeApiCaFile,
    luaPath: [p.edgeLuaDir, `${p.autoSslTree}/share/lua/5.1`],
    fallbackCertificate: { cert: p.fallbackCert, key: p.fallbackKey },
    autoSsl: {
      dir: `${i.dir}/auto-ssl`,
      acmeDirectory: p.acmeDirectory,
      contactEmail: 'edge-local@example.com',
      keyAlgorithm: 'prime256v1',
      expectedDomains: 100,
    },
    renewal: {
      profile: p.renewal?.profile ?? 'classic',
      renewalsPerHour: p.renewal?.renewalsPerHour ?? 60,
      passIntervalSeconds: p.renewal?.passIntervalSeconds ?? RENEWAL_PASS_INTERVAL_SECONDS,
      leaseTtlSeconds: p.renewal?.leaseTtlSeconds ?? RENEWER_LEASE_TTL_SECONDS,
    },
    redis: { hostEnv: 'REDIS_HOST', port: p.redisPort, tls: false, connectTimeoutMs: 500, readTimeoutMs: 1000 },
    domainCheck: {
      url: p.domainCheckUrl,
      timeoutMs: p.domainCheckTimeoutMs ?? 1000,
      allowTtlSeconds: 60,
      denyTtlSeconds: 30,
      errorTtlSeconds: 2,
      orderCooloffSeconds: p.orderCooloffSeconds ?? 30,
      peerWaitSeconds: 20,
      edgeHostnames: ['edge.local.test'],
    },
    origin: { url: p.originUrl, resolver: p.originResolver, ...ORIGIN_PROXY_DEFAULTS },
    clientMaxBodySize: '1m',
  };
}
