import { EdgeSettings } from './edge-settings';
import { HTTP_PORT, HTTPS_PORT } from './edge-ports';
import { NginxConfOptions, ORIGIN_PROXY_DEFAULTS, RENEWAL_PASS_INTERVAL_SECONDS, RENEWER_LEASE_TTL_SECONDS } from './nginx-conf';

/** Paths and ports inside the edge pod: the image (image/Dockerfile) and the chart's mounts agree on these. */
export const POD = {
  nginxBinary: '/usr/local/openresty/bin/openresty',
  nginxConf: '/etc/edge/nginx.conf',
  configDir: '/etc/edge',
  luaDir: '/etc/edge/lua',
  /** luarocks tree of the OpenResty image, where lua-resty-auto-ssl is installed. */
  luarocksLuaDir: '/usr/local/openresty/luajit/share/lua/5.1',
  /** nginx's pid and temp files: the pod's in-memory emptyDir (which hides whatever the image has there). */
  runDir: '/tmp',
  autoSslDir: '/var/lib/edge/auto-ssl',
  fallbackCert: '/usr/local/share/edge/fallback.crt',
  fallbackKey: '/usr/local/share/edge/fallback.key',
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  statusPort: 8081,
  /** The domains API (the product's calls; never behind the NLB). */
  apiPort: 8082,
  /** Environment variable of the domains API's bearer token (from the Secret of that name's key "token"). */
  apiTokenEnv: 'EDGE_API_TOKEN',
  /** nginx workers per pod; matches the CPU the pod requests (no CPU limit, no throttling). */
  workerProcesses: 2,
  /** Non-root user and group of the image. */
  uid: 10001,
  gid: 10001,
} as const;

/** The nginx options of an edge pod in a Kubernetes environment. */
export function podNginxOptions(s: EdgeSettings): NginxConfOptions {
  return {
    environment: s.environment,
    workerProcesses: POD.workerProcesses,
    loadModules: [],
    runDir: POD.runDir,
    // nginx's own stderr target; /dev/stderr cannot be opened when stderr is a socket.
    errorLog: { path: 'stderr', level: 'warn' },
    accessLog: '/dev/stdout',
    listen: { http: HTTP_PORT.container, https: HTTPS_PORT.container, status: POD.statusPort, api: POD.apiPort },
    proxyProtocol: true,
    realIpFrom: [s.vpcCidr],
    resolver: s.clusterDnsIp,
    trustedCaFile: POD.caBundle,
    luaPath: [POD.luaDir, POD.luarocksLuaDir],
    fallbackCertificate: { cert: POD.fallbackCert, key: POD.fallbackKey },
    autoSsl: {
      dir: POD.autoSslDir,
      acmeDirectory: s.acmeDirectory,
      contactEmail: s.contactEmail,
      keyAlgorithm: s.keyAlgorithm,
      expectedDomains: s.expectedDomains,
    },
    renewal: {
      profile: s.certificateProfile,
      renewalsPerHour: s.renewalsPerHour,
      passIntervalSeconds: RENEWAL_PASS_INTERVAL_SECONDS,
      leaseTtlSeconds: RENEWER_LEASE_TTL_SECONDS,
    },
    domainsApi: { tokenEnv: POD.apiTokenEnv },
    dnsPrecheck: s.dnsPrecheck && { resolver: `${s.clusterDnsIp}:53`, ...s.dnsPrecheck },
    redis: {
      hostEnv: 'REDIS_HOST',
      port: s.redis.port,
      tls: s.redis.tls,
      authEnv: 'REDIS_AUTH',
      connectTimeoutMs: 1000,
      readTimeoutMs: 2000,
    },
    domainCheck: {
      url: s.domainCheckUrl,
      timeoutMs: 2000,
      allowTtlSeconds: 3600,
      denyTtlSeconds: 300,
      errorTtlSeconds: 10,
      orderCooloffSeconds: 900,
      peerWaitSeconds: 30,
      edgeHostnames: s.edgeHostnames,
    },
    // Our Lua resolves the origin through the cluster DNS, like the pod's own lookups.
    origin: { url: s.originUrl, resolver: `${s.clusterDnsIp}:53`, ...ORIGIN_PROXY_DEFAULTS },
    clientMaxBodySize: '50m',
  };
}
