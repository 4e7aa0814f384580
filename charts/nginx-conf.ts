import { toLua } from './lua-literal';

/** Private key types dehydrated can generate (its KEY_ALGO, plus KEYSIZE for RSA). */
export type CertificateKeyAlgorithm = 'prime256v1' | 'secp384r1' | 'rsa2048' | 'rsa4096';

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
    /** lua-resty-auto-ssl's hook server (dehydrated calls it); always bound to 127.0.0.1. */
    readonly hook: number;
  };
  /** Whether the HTTP/HTTPS listeners expect a PROXY protocol header (behind the NLB: yes). */
  readonly proxyProtocol: boolean;
  /** Sources trusted to state the client address through PROXY protocol (the VPC CIDR). */
  readonly realIpFrom: string[];
  /** DNS server(s) for nginx's resolver, e.g. the cluster DNS service IP. */
  readonly resolver: string;
  /** CA bundle for verifying TLS peers from Lua (Redis, domain check) and the origin. */
  readonly trustedCaFile: string;
  /** Directories holding Lua modules (`<dir>/?.lua`), searched in this order before the defaults. */
  readonly luaPath: string[];
  /** Self-signed certificate served when no certificate can be had for a name. */
  readonly fallbackCertificate: { readonly cert: string; readonly key: string };
  readonly autoSsl: {
    /** lua-resty-auto-ssl's working directory (dehydrated state, the ACME account). */
    readonly dir: string;
    /** ACME directory URL. */
    readonly acmeDirectory: string;
    /** Contact email of the ACME account. */
    readonly contactEmail: string;
    readonly keyAlgorithm: CertificateKeyAlgorithm;
    /** Seconds between renewal scans. */
    readonly renewCheckIntervalSeconds: number;
    /** Customer domains expected: sizes the certificate cache (about 100 certificates per MB). */
    readonly expectedDomains: number;
    /** Extra CA file dehydrated's curl trusts (a test ACME server); undefined in real environments. */
    readonly acmeCaFile?: string;
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
  /** The product's origin; requests are proxied with Host preserved. */
  readonly origin: { readonly url: string };
  /** Largest request body passed to the origin, e.g. "50m". */
  readonly clientMaxBodySize: string;
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

/** Modern TLS (Mozilla "intermediate" minus DHE): ECDHE with AEAD ciphers only for TLS 1.2. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** dehydrated settings (its conf.d), from our options. */
function dehydratedSettings(o: NginxConfOptions['autoSsl']): Record<string, string> {
  const rsa = /^rsa(\d+)$/.exec(o.keyAlgorithm);
  return {
    KEY_ALGO: rsa ? 'rsa' : o.keyAlgorithm,
    ...(rsa ? { KEYSIZE: rsa[1] } : {}),
    CONTACT_EMAIL: o.contactEmail,
    RENEW_DAYS: '30',
    ...(o.acmeCaFile ? { CURL_OPTS: `--cacert ${o.acmeCaFile}` } : {}),
  };
}

function listen(o: NginxConfOptions, port: number, extra: string[] = []): string {
  const address = o.listen.address ? `${o.listen.address}:${port}` : String(port);
  return `listen ${[address, ...extra].join(' ')};`;
}

/** Renders the nginx.conf of an edge instance. Pure: the same options give the same text. */
export function renderNginxConf(o: NginxConfOptions): string {
  const dicts = sharedDictSizes(o.autoSsl.expectedDomains);
  const pp = o.proxyProtocol ? ['proxy_protocol'] : [];
  const originTls = o.origin.url.startsWith('https://');
  const originHost = new URL(o.origin.url).hostname;
  const env = [o.redis.hostEnv, o.redis.authEnv].filter((e): e is string => e !== undefined);

  const edgeConfig = toLua({
    environment: o.environment,
    auto_ssl: {
      dir: o.autoSsl.dir,
      ca: o.autoSsl.acmeDirectory,
      hook_server_port: o.listen.hook,
      renew_check_interval: o.autoSsl.renewCheckIntervalSeconds,
    },
    dehydrated: dehydratedSettings(o.autoSsl),
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
    '  map $http_upgrade $connection_upgrade {',
    '    default upgrade;',
    "    ''      close;",
    '  }',
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
    '      # A variable makes nginx resolve the origin at request time (its addresses change).',
    `      set $edge_origin ${o.origin.url};`,
    '      proxy_pass $edge_origin;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Host $host;',
    '      # The client address from PROXY protocol; a client-sent X-Forwarded-For is not trusted.',
    '      proxy_set_header X-Forwarded-For $remote_addr;',
    '      proxy_set_header X-Real-IP $remote_addr;',
    '      proxy_set_header X-Forwarded-Proto https;',
    '      proxy_set_header X-Forwarded-Host $host;',
    '      proxy_set_header Upgrade $http_upgrade;',
    '      proxy_set_header Connection $connection_upgrade;',
    '      proxy_connect_timeout 5s;',
    '      proxy_read_timeout 60s;',
    ...(originTls ? [
      '      proxy_ssl_server_name on;',
      `      proxy_ssl_name ${originHost};`,
      '      proxy_ssl_verify on;',
      `      proxy_ssl_trusted_certificate ${o.trustedCaFile};`,
      '      proxy_ssl_verify_depth 4;',
      '      proxy_ssl_protocols TLSv1.2 TLSv1.3;',
    ] : []),
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
    '    location = /metrics {',
    '      default_type text/plain;',
    '      content_by_lua_block { require("edge.setup").metrics() }',
    '    }',
    '    location / {',
    '      return 404;',
    '    }',
    '  }',
    '',
    '  # lua-resty-auto-ssl hook server: dehydrated reports challenges and certificates here.',
    '  server {',
    `    listen 127.0.0.1:${o.listen.hook};`,
    '    client_body_buffer_size 128k;',
    '    client_max_body_size 128k;',
    '    access_log off;',
    '    location / {',
    '      content_by_lua_block { require("edge.setup").hook_server() }',
    '    }',
    '  }',
    '}',
    '',
  ];
  return lines.join('\n');
}
