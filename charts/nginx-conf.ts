import { LuaValue, toLua } from './lua-literal';

/** Certificate key types our ACME client generates (OpenSSL curve names; RSA with its size). */
export type CertificateKeyAlgorithm = 'prime256v1' | 'secp384r1' | 'rsa2048';

/**
 * Let's Encrypt's certificate profiles: "classic" (90 days, 64 from 2027-02-10, 45 from
 * 2028-02-16), "tlsserver" (45 days), "shortlived" (160 hours).
 */
export const CERTIFICATE_PROFILES = ['classic', 'tlsserver', 'shortlived'] as const;
export type CertificateProfile = typeof CERTIFICATE_PROFILES[number];

/** The ACME client's name of each key type (edge.acme.crypto). */
const ACME_KEY_TYPES: Record<CertificateKeyAlgorithm, string> = {
  prime256v1: 'ec-p256', secp384r1: 'ec-p384', rsa2048: 'rsa-2048',
};

/** Longest a first issuance may take (the handshake that ordered it waits this long at most). */
export const ACME_ORDER_TIMEOUT_SECONDS = 30;
/** Timeout of each call to the ACME server. */
export const ACME_REQUEST_TIMEOUT_MS = 5000;
/** Orders one worker runs at once (on cosockets); more wait for a slot, within the order timeout. */
export const ACME_CONCURRENT_ORDERS_PER_WORKER = 16;

/** Seconds between two passes of the environment's renewer (jittered by ±20 %). */
export const RENEWAL_PASS_INTERVAL_SECONDS = 60;
/** TTL of the renewer's lease: a stopped renewer is replaced by another instance within it. */
export const RENEWER_LEASE_TTL_SECONDS = 30;
/** Due names the renewer takes from the index per store command. */
export const RENEWAL_BATCH = 50;

/** Everything the nginx.conf of an edge instance depends on. No defaults: profiles fill them. */
export interface NginxConfOptions {
  /** Environment name: the Redis key prefix and the tag in logs. */
  readonly environment: string;
  /** `worker_processes`: "auto" in pods (one per CPU of the limit), a number locally. */
  readonly workerProcesses: number | 'auto';
  /** `user` directive, only when the master runs as root (local edge). Omitted in pods (non-root). */
  readonly user?: string;
  /** Absolute paths of dynamic modules to load (Debian's nginx); empty for OpenResty. */
  readonly loadModules: string[];
  /** Where nginx writes its pid file and temp files (writable; an emptyDir in pods). */
  readonly runDir: string;
  /** Error log target and level, e.g. "/dev/stderr" and "warn". */
  readonly errorLog: { readonly path: string; readonly level: 'warn' | 'notice' | 'info' };
  /** Access log target, e.g. "/dev/stdout". */
  readonly accessLog: string;
  /** Listening ports, and the address they bind (undefined: all addresses). */
  readonly listen: {
    readonly address?: string;
    /** Plain HTTP: ACME challenges, redirects (NLB :80). */
    readonly http: number;
    /** HTTPS with on-demand certificates (NLB :443). */
    readonly https: number;
    /** Health and metrics, never exposed through the NLB. */
    readonly status: number;
    /** The domains API (for the product; never behind the NLB). */
    readonly api: number;
  };
  /** Whether the HTTP/HTTPS listeners expect a PROXY protocol header (behind the NLB: yes). */
  readonly proxyProtocol: boolean;
  /** Sources trusted to state the client address through PROXY protocol (the VPC CIDR). */
  readonly realIpFrom: string[];
  /** DNS server(s) for nginx's resolver, e.g. the cluster DNS service IP. */
  readonly resolver: string;
  /** CA bundle for verifying TLS peers from Lua (ACME server, Redis, domain check) and the origin. */
  readonly trustedCaFile: string;
  /** Directories holding Lua modules (`<dir>/?.lua`), searched in this order before the defaults. */
  readonly luaPath: string[];
  /** Self-signed certificate served when no certificate can be had for a name. */
  readonly fallbackCertificate: { readonly cert: string; readonly key: string };
  readonly autoSsl: {
    /** lua-resty-auto-ssl's working directory (only its renewal job's scratch files). */
    readonly dir: string;
    /** ACME directory URL. */
    readonly acmeDirectory: string;
    /** Contact email of the ACME account. */
    readonly contactEmail: string;
    readonly keyAlgorithm: CertificateKeyAlgorithm;
    /** Customer domains expected: sizes the certificate cache (about 100 certificates per MB). */
    readonly expectedDomains: number;
  };
  /** Renewals: one renewer per environment (a lease in the store), a due index, ARI windows. */
  readonly renewal: {
    /** Profile asked for in every order, where the ACME directory advertises profiles. */
    readonly profile: CertificateProfile;
    /** Renewal orders per hour for the whole environment (new names are not counted against it). */
    readonly renewalsPerHour: number;
    /** Seconds between two passes of the renewer. @default RENEWAL_PASS_INTERVAL_SECONDS */
    readonly passIntervalSeconds: number;
    /** TTL of the renewer's lease. @default RENEWER_LEASE_TTL_SECONDS */
    readonly leaseTtlSeconds: number;
  };
  readonly redis: {
    /** Environment variable holding the Redis host name (known only at deploy time). */
    readonly hostEnv: string;
    readonly port: number;
    /** TLS to Redis, verifying its certificate against trustedCaFile and its host name. */
    readonly tls: boolean;
    /** Environment variable holding the AUTH token/password; undefined for none (local). */
    readonly authEnv?: string;
    readonly connectTimeoutMs: number;
    readonly readTimeoutMs: number;
  };
  readonly domainCheck: {
    /** GET <url>?domain=<name>: 200 = ours, 404 = not ours; anything else is an error. */
    readonly url: string;
    readonly timeoutMs: number;
    /** Seconds an "allowed" verdict is cached. */
    readonly allowTtlSeconds: number;
    /** Seconds a "denied" verdict is cached. */
    readonly denyTtlSeconds: number;
    /** Seconds an error (timeout, 5xx) is cached as a refusal, sparing the endpoint under load. */
    readonly errorTtlSeconds: number;
    /** Seconds after an order for a name before another may be placed (cluster-wide). */
    readonly orderCooloffSeconds: number;
    /** Seconds a handshake waits for another instance's order of the same name to finish. */
    readonly peerWaitSeconds: number;
    /** Our own host names: never issued for. */
    readonly edgeHostnames: string[];
  };
  /** The domains API: the product registers, inspects and removes customer domains. */
  readonly domainsApi: {
    /** Environment variable holding the bearer token every call must carry (from a Secret). */
    readonly tokenEnv: string;
  };
  /**
   * The DNS pre-check before any order: the name must resolve through one of `names` (a CNAME
   * in its chain) or to one of `addresses`. Undefined: no pre-check.
   */
  readonly dnsPrecheck?: {
    /** DNS server "ip:port" asked (the cluster DNS in pods). */
    readonly resolver: string;
    /** Our published names customers CNAME to (the edge host names, the NLB's name). */
    readonly names: string[];
    /** Our static addresses apex domains point A records at (the NLB's Elastic IPs). */
    readonly addresses: string[];
  };
  /** The product's origin; requests are proxied with Host preserved, over a keep-alive pool. */
  readonly origin: OriginProxyOptions;
  /** Largest request body passed to the origin, e.g. "50m". */
  readonly clientMaxBodySize: string;
}

/**
 * How the edge reaches the origin: `upstream edge_origin` with a keep-alive pool, its addresses
 * resolved while running by our Lua (lua/edge/serve/origin.lua). The profiles fill it; the
 * values they share are ORIGIN_PROXY_DEFAULTS.
 */
export interface OriginProxyOptions {
  /** `https://host[:port]` (`http://` only for a local stand-in); the host is a name to resolve, or an IP literal. */
  readonly url: string;
  /**
   * DNS server our Lua resolver asks for the origin's addresses: "ip:port", or "ip" for port 53.
   * In pods the cluster DNS service. Required unless the url's host is an IP literal.
   */
  readonly resolver?: string;
  /** Idle keep-alive connections to the origin each worker keeps. @default 32 */
  readonly keepaliveConnections: number;
  /**
   * Seconds an idle connection stays in the pool: below the 60 s idle timeout of the load
   * balancers usually in front of an origin, so the origin does not close one we are about to use.
   * @default 30
   */
  readonly keepaliveTimeoutSeconds: number;
  /** Longest time between two resolutions of the origin's name, whatever its DNS TTL says. @default 30 */
  readonly maxResolveIntervalSeconds: number;
}

/** The @default values of OriginProxyOptions, which both profiles use. */
export const ORIGIN_PROXY_DEFAULTS = {
  keepaliveConnections: 32,
  keepaliveTimeoutSeconds: 30,
  maxResolveIntervalSeconds: 30,
} as const;

/** The upstream the edge proxies to (edge.serve.origin picks its addresses). */
export const ORIGIN_UPSTREAM = 'edge_origin';

/** What proxying to the origin adds to nginx.conf: renderNginxConf and the integration tests use the same. */
export interface OriginProxy {
  /** http-level directives: the Connection map and the upstream. Not indented. */
  readonly http: string[];
  /** Directives of the proxying location. Not indented. */
  readonly location: string[];
  /** `location = /ready` for the status server: 503 until the origin's addresses are known. Not indented. */
  readonly readyLocation: string[];
  /** The `origin` entry of the config table given to edge.setup.init (and on to edge.serve.origin.init). */
  readonly luaConfig: { [key: string]: LuaValue | undefined };
}

/** The origin's upstream, proxy directives, readiness check and Lua config, from its options. */
export function renderOriginProxy(o: OriginProxyOptions, trustedCaFile: string): OriginProxy {
  const url = new URL(o.url);
  const tls = url.protocol === 'https:';
  const port = url.port ? Number(url.port) : (tls ? 443 : 80);
  const host = url.hostname;
  const ipLiteral = /^\d+\.\d+\.\d+\.\d+$|^\[/.test(host);
  if (!ipLiteral && !o.resolver) throw new Error(`origin ${host}: a resolver is needed to resolve its name`);
  return {
    http: [
      '# An upgrade passes through; any other request goes without a Connection header (HTTP/1.1',
      '# keep-alive), neither "upgrade" nor "close".',
      'map $http_upgrade $connection_upgrade {',
      '  default upgrade;',
      "  ''      '';",
      '}',
      '',
      '# The origin over a keep-alive pool per worker. edge.serve.origin resolves its name while',
      '# running and picks the address of each try: the server is only a placeholder. keepalive',
      '# must come after balancer_by_lua_block, which it wraps.',
      `upstream ${ORIGIN_UPSTREAM} {`,
      '  server 0.0.0.1;',
      '  balancer_by_lua_block { require("edge.serve.origin").balance() }',
      `  keepalive ${o.keepaliveConnections};`,
      `  keepalive_timeout ${o.keepaliveTimeoutSeconds}s;`,
      '  keepalive_requests 1000;',
      '}',
    ],
    location: [
      `proxy_pass ${tls ? 'https' : 'http'}://${ORIGIN_UPSTREAM};`,
      'proxy_http_version 1.1;',
      'proxy_set_header Host $host;',
      '# The client address from PROXY protocol; a client-sent X-Forwarded-For is not trusted.',
      'proxy_set_header X-Forwarded-For $remote_addr;',
      'proxy_set_header X-Real-IP $remote_addr;',
      'proxy_set_header X-Forwarded-Proto https;',
      'proxy_set_header X-Forwarded-Host $host;',
      'proxy_set_header Upgrade $http_upgrade;',
      'proxy_set_header Connection $connection_upgrade;',
      'proxy_connect_timeout 5s;',
      'proxy_read_timeout 60s;',
      '# Idempotent requests are tried again after an error or timeout: on another address, or',
      '# on a new connection after a dead pooled one. 3 tries at most in all.',
      'proxy_next_upstream error timeout;',
      'proxy_next_upstream_tries 3;',
      ...(tls ? [
        'proxy_ssl_server_name on;',
        `proxy_ssl_name ${host};`,
        'proxy_ssl_verify on;',
        `proxy_ssl_trusted_certificate ${trustedCaFile};`,
        'proxy_ssl_verify_depth 4;',
        'proxy_ssl_protocols TLSv1.2 TLSv1.3;',
        '# No effect yet behind a Lua balancer (lua-nginx-module\'s balancer does not resume TLS',
        '# sessions); keep-alive makes new connections rare.',
        'proxy_ssl_session_reuse on;',
      ] : []),
    ],
    readyLocation: [
      'location = /ready {',
      '  default_type text/plain;',
      '  content_by_lua_block {',
      '    if require("edge.serve.origin").ready() then',
      '      ngx.say("ready")',
      '    else',
      '      ngx.status = 503',
      '      ngx.say("origin not resolved yet")',
      '    end',
      '  }',
      '}',
    ],
    luaConfig: {
      host,
      port,
      tls,
      resolver: o.resolver,
      max_resolve_interval: o.maxResolveIntervalSeconds,
    },
  };
}

/** The shared dict sizes, in megabytes, for an expected number of domains. */
export function sharedDictSizes(expectedDomains: number): { autoSslMb: number; edgeCacheMb: number } {
  return {
    // lua-resty-auto-ssl keeps chain, key and OCSP per name: about 100 certificates per MB; 25 % headroom.
    autoSslMb: Math.max(1, Math.ceil((expectedDomains / 100) * 1.25)),
    // Verdicts and order marks: a few hundred bytes each; room for as many bogus names as real ones.
    edgeCacheMb: Math.max(1, Math.ceil((expectedDomains * 2 * 512) / (1024 * 1024))),
  };
}

/**
 * Seconds between two reads of the store's certificate change feed by each worker: the bound
 * within which a renewed, re-issued or deleted certificate is served (or no longer served) by
 * every pod.
 */
export const CERT_CHANGE_POLL_SECONDS = 5;

/** Longest a worker keeps a parsed certificate without a change in the feed (a safety net). */
export const CERT_CACHE_MAX_AGE_SECONDS = 3600;

/** Parsed certificates each worker keeps (the handshake cache): every expected name, plus headroom. */
export function certCacheEntries(expectedDomains: number): number {
  return Math.max(100, Math.ceil(expectedDomains * 1.25));
}

/**
 * Memory of one worker's handshake cache, in megabytes: a parsed P-256 chain of two and its key
 * measured 11.9 KB in OpenSSL 3 (10,000 entries); 16 KB leaves room for RSA keys.
 */
export function certCacheMb(expectedDomains: number): number {
  return Math.ceil((certCacheEntries(expectedDomains) * 16) / 1024);
}

/** Modern TLS (Mozilla "intermediate" minus DHE): ECDHE with AEAD ciphers only for TLS 1.2. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

function listen(o: NginxConfOptions, port: number, extra: string[] = []): string {
  const address = o.listen.address ? `${o.listen.address}:${port}` : String(port);
  return `listen ${[address, ...extra].join(' ')};`;
}

/** Renders the nginx.conf of an edge instance. Pure: the same options give the same text. */
export function renderNginxConf(o: NginxConfOptions): string {
  const dicts = sharedDictSizes(o.autoSsl.expectedDomains);
  const pp = o.proxyProtocol ? ['proxy_protocol'] : [];
  const origin = renderOriginProxy(o.origin, o.trustedCaFile);
  const env = [o.redis.hostEnv, o.redis.authEnv, o.domainsApi.tokenEnv].filter((e): e is string => e !== undefined);

  const edgeConfig = toLua({
    environment: o.environment,
    auto_ssl: {
      dir: o.autoSsl.dir,
    },
    acme: {
      directory_url: o.autoSsl.acmeDirectory,
      contact: `mailto:${o.autoSsl.contactEmail}`,
      key_type: ACME_KEY_TYPES[o.autoSsl.keyAlgorithm],
      timeout: ACME_REQUEST_TIMEOUT_MS,
      order_timeout: ACME_ORDER_TIMEOUT_SECONDS,
      max_concurrent_orders: ACME_CONCURRENT_ORDERS_PER_WORKER,
      profile: o.renewal.profile,
    },
    renewal: {
      renewals_per_hour: o.renewal.renewalsPerHour,
      pass_interval: o.renewal.passIntervalSeconds,
      lease_ttl: o.renewal.leaseTtlSeconds,
      batch: RENEWAL_BATCH,
    },
    redis: {
      host_env: o.redis.hostEnv,
      port: o.redis.port,
      ssl: o.redis.tls,
      auth_env: o.redis.authEnv,
      prefix: o.environment,
      connect_timeout: o.redis.connectTimeoutMs,
      read_timeout: o.redis.readTimeoutMs,
    },
    domain_check: {
      url: o.domainCheck.url,
      timeout: o.domainCheck.timeoutMs,
      allow_ttl: o.domainCheck.allowTtlSeconds,
      deny_ttl: o.domainCheck.denyTtlSeconds,
      error_ttl: o.domainCheck.errorTtlSeconds,
      order_cooloff: o.domainCheck.orderCooloffSeconds,
      peer_wait: o.domainCheck.peerWaitSeconds,
      edge_hostnames: o.domainCheck.edgeHostnames,
    },
    cert_cache: {
      size: certCacheEntries(o.autoSsl.expectedDomains),
      max_age: CERT_CACHE_MAX_AGE_SECONDS,
      poll_interval: CERT_CHANGE_POLL_SECONDS,
    },
    origin: origin.luaConfig,
    domains_api: { token_env: o.domainsApi.tokenEnv },
    dns_precheck: o.dnsPrecheck && {
      resolver: o.dnsPrecheck.resolver,
      names: o.dnsPrecheck.names,
      addresses: o.dnsPrecheck.addresses,
    },
  }, '    ');

  const realIp = o.proxyProtocol
    ? [...o.realIpFrom.map((cidr) => `set_real_ip_from ${cidr};`), 'real_ip_header proxy_protocol;']
    : [];

  const lines = [
    `# nginx.conf of the "${o.environment}" edge. Rendered by charts/nginx-conf.ts: edit that, not this.`,
    ...(o.user ? [`user ${o.user};`] : []),
    ...o.loadModules.map((m) => `load_module ${m};`),
    `worker_processes ${o.workerProcesses};`,
    `pid ${o.runDir}/nginx.pid;`,
    `error_log ${o.errorLog.path} ${o.errorLog.level};`,
    '# Only these variables reach Lua (nginx clears the environment); values never appear here.',
    ...env.map((name) => `env ${name};`),
    '',
    'events {',
    '  worker_connections 4096;',
    '}',
    '',
    'http {',
    '  server_tokens off;',
    '  default_type application/octet-stream;',
    `  client_body_temp_path ${o.runDir}/client_body;`,
    `  proxy_temp_path ${o.runDir}/proxy;`,
    `  fastcgi_temp_path ${o.runDir}/fastcgi;`,
    `  uwsgi_temp_path ${o.runDir}/uwsgi;`,
    `  scgi_temp_path ${o.runDir}/scgi;`,
    '',
    "  log_format edge escape=json '{\"time\":\"$time_iso8601\",\"client\":\"$remote_addr\",\"sni\":\"$ssl_server_name\",'",
    "    '\"host\":\"$host\",\"request\":\"$request\",\"status\":$status,\"bytes\":$body_bytes_sent,'",
    "    '\"duration\":$request_time,\"upstream_duration\":\"$upstream_response_time\",\"tls\":\"$ssl_protocol\"}';",
    `  access_log ${o.accessLog} edge;`,
    '',
    `  resolver ${o.resolver} valid=30s ipv6=off;`,
    '  resolver_timeout 2s;',
    '',
    `  lua_package_path "${[...o.luaPath.map((dir) => `${dir}/?.lua`), ''].join(';')};";`,
    `  lua_shared_dict auto_ssl ${dicts.autoSslMb}m;`,
    '  lua_shared_dict auto_ssl_settings 64k;',
    `  lua_shared_dict edge_cache ${dicts.edgeCacheMb}m;`,
    '  lua_shared_dict edge_metrics 1m;',
    `  lua_ssl_trusted_certificate ${o.trustedCaFile};`,
    '  lua_ssl_verify_depth 4;',
    '  # Our Lua logs socket failures itself, once, with context.',
    '  lua_socket_log_errors off;',
    '',
    '  init_by_lua_block {',
    `    require("edge.setup").init(${edgeConfig})`,
    '  }',
    '  init_worker_by_lua_block {',
    '    require("edge.setup").init_worker()',
    '  }',
    '',
    ...origin.http.map((l) => (l ? `  ${l}` : '')),
    '',
    '  # Plain HTTP: ACME http-01 challenges; everything else goes to https.',
    '  server {',
    `    ${listen(o, o.listen.http, ['default_server', ...pp])}`,
    ...realIp.map((l) => `    ${l}`),
    '    location /.well-known/acme-challenge/ {',
    '      content_by_lua_block { require("edge.setup").challenge_server() }',
    '    }',
    '    location / {',
    '      return 301 https://$host$request_uri;',
    '    }',
    '  }',
    '',
    '  # HTTPS: certificates issued on demand during the first handshake for a name.',
    '  server {',
    `    ${listen(o, o.listen.https, ['ssl', 'http2', 'default_server', ...pp])}`,
    ...realIp.map((l) => `    ${l}`),
    '    ssl_certificate_by_lua_block { require("edge.setup").ssl_certificate() }',
    `    ssl_certificate ${o.fallbackCertificate.cert};`,
    `    ssl_certificate_key ${o.fallbackCertificate.key};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    `    ssl_ciphers ${TLS12_CIPHERS};`,
    '    ssl_prefer_server_ciphers off;',
    '    ssl_session_cache shared:edge_tls:20m;',
    '    ssl_session_timeout 1d;',
    '    ssl_session_tickets off;',
    `    client_max_body_size ${o.clientMaxBodySize};`,
    '',
    '    location / {',
    ...origin.location.map((l) => `      ${l}`),
    '    }',
    '  }',
    '',
    '  # Health and metrics: readiness and liveness probes, scrapers. Not behind the NLB.',
    '  server {',
    `    ${listen(o, o.listen.status)}`,
    '    access_log off;',
    '    location = /healthz {',
    '      default_type text/plain;',
    '      return 200 "ok\\n";',
    '    }',
    '    # Readiness: only once the origin\'s addresses are known (liveness stays /healthz).',
    ...origin.readyLocation.map((l) => `    ${l}`),
    '    location = /metrics {',
    '      default_type text/plain;',
    '      content_by_lua_block { require("edge.setup").metrics() }',
    '    }',
    '    location / {',
    '      return 404;',
    '    }',
    '  }',
    '',
    '  # The domains API: the product registers, inspects and removes customer domains. Bearer',
    '  # token on every call; never behind the NLB (a NetworkPolicy admits the product only).',
    '  server {',
    `    ${listen(o, o.listen.api)}`,
    '    client_max_body_size 16k;',
    '    location /v1/ {',
    '      content_by_lua_block { require("edge.setup").domains_api() }',
    '    }',
    '    location / {',
    '      return 404;',
    '    }',
    '  }',
    '}',
    '',
  ];
  return lines.join('\n');
}
