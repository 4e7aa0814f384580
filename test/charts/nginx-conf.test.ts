import { localNginxOptions } from '../../charts/local-profile';
import { toLua } from '../../charts/lua-literal';
import { certCacheEntries, certCacheMb, ORIGIN_PROXY_DEFAULTS, renderNginxConf, renderOriginProxy, sharedDictSizes, TLS12_CIPHERS } from '../../charts/nginx-conf';
import { podNginxOptions } from '../../charts/pod-layout';
import { LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING } from '../../lib/config';
import { settingsFor } from './fixtures';

const prod = renderNginxConf(podNginxOptions(settingsFor('prod')));
const dev = renderNginxConf(podNginxOptions(settingsFor('dev-example')));

/** The body of the server block that listens on a port (up to its closing brace at two spaces). */
function serverBlock(conf: string, port: number): string {
  const start = conf.search(new RegExp(`\\n  server \\{\\n    listen [^\\n]*\\b${port}\\b`));
  expect(start).toBeGreaterThan(0);
  return conf.slice(start, conf.indexOf('\n  }\n', start));
}

/** The Lua table given to edge.setup.init, as text. */
function initTable(conf: string): string {
  return conf.slice(conf.indexOf('require("edge.setup").init('), conf.indexOf('init_worker_by_lua_block'));
}

describe('shared dicts and caches', () => {
  test('auto_ssl sized from the expected domains (about 100 certificates per MB, 25 % headroom)', () => {
    expect(prod).toContain('lua_shared_dict auto_ssl 125m;'); // 10000 domains
    expect(dev).toContain('lua_shared_dict auto_ssl 2m;'); // 100 domains
    expect(sharedDictSizes(1)).toEqual({ autoSslMb: 1, edgeCacheMb: 1 });
    expect(sharedDictSizes(100000).autoSslMb).toBe(1250);
  });

  test('auto_ssl_settings and our own caches are declared', () => {
    for (const conf of [prod, dev]) {
      expect(conf).toContain('lua_shared_dict auto_ssl_settings 64k;');
      expect(conf).toMatch(/lua_shared_dict edge_cache \d+m;/);
      expect(conf).toContain('lua_shared_dict edge_metrics 1m;');
    }
  });

  test('the handshake cache: every expected name (25 % headroom) per worker, the change feed polled every 5 s', () => {
    expect(initTable(prod)).toMatch(/cert_cache = \{\s*size = 12500,\s*max_age = 3600,\s*poll_interval = 5,\s*\}/);
    expect(initTable(dev)).toMatch(/size = 125\b/);
    expect(certCacheEntries(10)).toBe(100);
    expect(certCacheMb(10000)).toBe(196);
  });

  test('a resolver that works in the cluster: the cluster DNS service', () => {
    expect(prod).toContain('resolver 172.20.0.10 valid=30s ipv6=off;');
  });

  test('Lua finds our modules first, then the luarocks tree, then the defaults', () => {
    expect(prod).toContain('lua_package_path "/etc/edge/lua/?.lua;/usr/local/openresty/luajit/share/lua/5.1/?.lua;;";');
  });
});

describe('init_by_lua: lua-resty-auto-ssl settings', () => {
  test('prod: Redis over TLS (verified against the CA bundle), AUTH from the environment, key prefix per environment', () => {
    const init = initTable(prod);
    expect(init).toMatch(/redis = \{[^}]*host_env = "REDIS_HOST",[^}]*port = 6379,[^}]*ssl = true,[^}]*auth_env = "REDIS_AUTH",[^}]*prefix = "prod",/s);
    expect(prod).toContain('lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;');
    expect(prod).toContain('env REDIS_HOST;');
    expect(prod).toContain('env REDIS_AUTH;');
  });

  test('dev: in-namespace Redis without TLS, its own prefix', () => {
    expect(initTable(dev)).toMatch(/ssl = false,[^}]*prefix = "dev-example",/s);
  });

  test('ACME directory: Let\'s Encrypt production for prod, staging for dev', () => {
    expect(initTable(prod)).toContain(`directory_url = "${LETS_ENCRYPT_PRODUCTION}"`);
    expect(initTable(dev)).toContain(`directory_url = "${LETS_ENCRYPT_STAGING}"`);
  });

  test('renewals: our renewer\'s budget, pass interval and lease in the init table, the profile with the ACME options; auto-ssl\'s own interval gone; no hook server', () => {
    const init = initTable(prod);
    expect(init).not.toContain('hook_server_port');
    expect(init).not.toContain('renew_check_interval');
    expect(init).toContain('dir = "/var/lib/edge/auto-ssl",');
    expect(init).toMatch(/renewal = \{\s*renewals_per_hour = 60,\s*pass_interval = 60,\s*lease_ttl = 30,\s*batch = 50,\s*\}/);
    expect(init).toMatch(/acme = \{[^}]*profile = "classic",/s);
    const shortlived = renderNginxConf(podNginxOptions(settingsFor('prod', (r) => { r.environments[0].certificateProfile = 'shortlived'; r.environments[0].renewalsPerHour = 200; })));
    expect(shortlived).toContain('profile = "shortlived",');
    expect(shortlived).toContain('renewals_per_hour = 200,');
  });

  test('our ACME client: the directory, the contact, ECDSA P-256 keys by default, bounded calls and orders', () => {
    const init = initTable(prod);
    expect(init).toMatch(new RegExp(`acme = \\{\\s+directory_url = "${LETS_ENCRYPT_PRODUCTION}",\\s+contact = "mailto:tls-admin@example.com",`
      + '\\s+key_type = "ec-p256",\\s+timeout = 5000,\\s+order_timeout = 30,\\s+max_concurrent_orders = 16,'));
    expect(initTable(dev)).toContain(`directory_url = "${LETS_ENCRYPT_STAGING}",`);
    expect(init).not.toMatch(/dehydrated|KEY_ALGO|CURL_OPTS/);
  });

  test.each([['secp384r1', 'ec-p384'], ['rsa2048', 'rsa-2048']] as const)('keyAlgorithm %s orders %s keys', (algorithm, keyType) => {
    const conf = renderNginxConf(podNginxOptions(settingsFor('prod', (r) => { r.environments[0].keyAlgorithm = algorithm; })));
    expect(initTable(conf)).toContain(`key_type = "${keyType}",`);
  });

  test('allow_domain policy: domain-check URL, timeouts, cache TTLs, cool-off and our own host names', () => {
    const init = initTable(prod);
    expect(init).toContain('url = "https://app.example.com/internal/custom-domains/check",');
    expect(init).toMatch(/timeout = 2000,\s+allow_ttl = 3600,\s+deny_ttl = 300,\s+error_ttl = 10,\s+order_cooloff = 900,/);
    expect(init).toMatch(/edge_hostnames = \{\s+"edge.example.com",\s+\}/);
  });
});

describe(':8080 (NLB port 80)', () => {
  const http = serverBlock(prod, 8080);

  test('PROXY protocol, the client address trusted from the VPC only', () => {
    expect(http).toContain('listen 8080 default_server proxy_protocol;');
    expect(http).toContain('set_real_ip_from 10.40.0.0/16;');
    expect(http).toContain('real_ip_header proxy_protocol;');
  });

  test('serves ACME challenges, redirects everything else to https', () => {
    expect(http).toMatch(/location \/\.well-known\/acme-challenge\/ \{\s+content_by_lua_block \{ require\("edge.setup"\).challenge_server\(\) \}/);
    expect(http).toMatch(/location \/ \{\s+return 301 https:\/\/\$host\$request_uri;/);
  });
});

describe(':8443 (NLB port 443)', () => {
  const https = serverBlock(prod, 8443);

  test('TLS with PROXY protocol and HTTP/2', () => {
    expect(https).toContain('listen 8443 ssl http2 default_server proxy_protocol;');
    expect(https).toContain('set_real_ip_from 10.40.0.0/16;');
  });

  test('TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers, no session tickets', () => {
    expect(https).toContain('ssl_protocols TLSv1.2 TLSv1.3;');
    expect(https).toContain(`ssl_ciphers ${TLS12_CIPHERS};`);
    for (const cipher of TLS12_CIPHERS.split(':')) expect(cipher).toMatch(/^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    expect(https).toContain('ssl_session_tickets off;');
  });

  test('certificates by lua-resty-auto-ssl, the self-signed fallback otherwise', () => {
    expect(https).toContain('ssl_certificate_by_lua_block { require("edge.setup").ssl_certificate() }');
    expect(https).toContain('ssl_certificate /usr/local/share/edge/fallback.crt;');
    expect(https).toContain('ssl_certificate_key /usr/local/share/edge/fallback.key;');
  });

  test('proxies to the origin\'s upstream with Host preserved, forwarding headers set, and the origin verified by name', () => {
    const location = https.slice(https.indexOf('    location / {'));
    expect(location).toContain('proxy_pass https://edge_origin;');
    expect(location).not.toContain('$edge_origin');
    expect(location).toContain('proxy_http_version 1.1;');
    expect(location).toContain('proxy_set_header Host $host;');
    expect(location).toContain('proxy_set_header X-Forwarded-For $remote_addr;');
    expect(location).toContain('proxy_set_header X-Forwarded-Proto https;');
    expect(location).toContain('proxy_set_header X-Forwarded-Host $host;');
    expect(location).toContain('proxy_ssl_verify on;');
    expect(location).toContain('proxy_ssl_server_name on;');
    expect(location).toContain('proxy_ssl_name app.example.com;');
    expect(location).toContain('proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;');
    expect(location).toContain('proxy_ssl_session_reuse on;');
  });

  test('WebSocket upgrades pass through; other requests send no Connection header (keep-alive)', () => {
    expect(https).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(https).toContain('proxy_set_header Connection $connection_upgrade;');
    expect(prod).toMatch(/\n  map \$http_upgrade \$connection_upgrade \{\n    default upgrade;\n    ''      '';\n  \}\n/);
    expect(prod).not.toMatch(/''\s+close;/);
  });

  test('idempotent requests retried on error or timeout, 3 tries at most', () => {
    expect(https).toContain('proxy_next_upstream error timeout;');
    expect(https).toContain('proxy_next_upstream_tries 3;');
  });
});

describe('the origin upstream: a keep-alive pool, addresses from edge.serve.origin', () => {
  /** The upstream block, up to its closing brace. */
  const upstream = (conf: string) => conf.slice(conf.indexOf('  upstream edge_origin {'), conf.indexOf('\n  }\n', conf.indexOf('  upstream edge_origin {')) + 4);

  test('a placeholder server, the Lua balancer, then keepalive (which must wrap the balancer)', () => {
    expect(upstream(prod)).toBe([
      '  upstream edge_origin {',
      '    server 0.0.0.1;',
      '    balancer_by_lua_block { require("edge.serve.origin").balance() }',
      '    keepalive 32;',
      '    keepalive_timeout 30s;',
      '    keepalive_requests 1000;',
      '  }',
    ].join('\n'));
    expect(prod.indexOf('balancer_by_lua_block')).toBeLessThan(prod.indexOf('keepalive 32;'));
    // Declared outside any server, after the Lua is initialised.
    expect(prod.indexOf('upstream edge_origin {')).toBeGreaterThan(prod.indexOf('init_worker_by_lua_block'));
  });

  test('edge.serve.origin gets the origin\'s host, port and the cluster DNS as its resolver', () => {
    expect(initTable(prod)).toMatch(/origin = \{\s+host = "app.example.com",\s+port = 443,\s+tls = true,\s+resolver = "172.20.0.10:53",\s+max_resolve_interval = 30,\s+\}/);
  });

  test('pool size, idle timeout and resolve interval come from the options', () => {
    const options = podNginxOptions(settingsFor('prod'));
    const conf = renderNginxConf({
      ...options,
      origin: { ...options.origin, url: 'https://origin.example.net:8443', keepaliveConnections: 7, keepaliveTimeoutSeconds: 12, maxResolveIntervalSeconds: 5 },
    });
    expect(upstream(conf)).toContain('keepalive 7;');
    expect(upstream(conf)).toContain('keepalive_timeout 12s;');
    expect(initTable(conf)).toMatch(/host = "origin.example.net",\s+port = 8443,[^}]*max_resolve_interval = 5,/);
    expect(conf).toContain('proxy_ssl_name origin.example.net;');
  });

  test('a name needs a resolver; an IP literal does not', () => {
    expect(() => renderOriginProxy({ url: 'https://origin.example.net', ...ORIGIN_PROXY_DEFAULTS }, '/ca.pem')).toThrow(/a resolver is needed/);
    const literal = renderOriginProxy({ url: 'http://127.0.0.1:8080', ...ORIGIN_PROXY_DEFAULTS }, '/ca.pem');
    expect(literal.location).toContain('proxy_pass http://edge_origin;');
    expect(literal.luaConfig).toMatchObject({ host: '127.0.0.1', port: 8080, tls: false });
  });
});

describe('status server', () => {
  test('health and metrics on the status port', () => {
    const status = serverBlock(prod, 8081);
    expect(status).toMatch(/location = \/healthz \{[^}]*return 200/s);
    // Readiness: 503 until the origin's addresses are known.
    expect(status).toMatch(/location = \/ready \{[^]*require\("edge.serve.origin"\).ready\(\)[^]*ngx.status = 503/);
    expect(status).toContain('location = /metrics {');
    expect(status).not.toContain('proxy_protocol');
  });

  test('no hook server (dehydrated is gone)', () => {
    expect(prod).not.toContain('8999');
    expect(prod).not.toContain('hook_server');
  });
});

describe('domains API server (pods)', () => {
  test('its own plain-HTTP port 8082: no PROXY protocol (never behind the NLB), no TLS; only /v1/ reaches the Lua handler', () => {
    for (const conf of [prod, dev]) {
      const api = serverBlock(conf, 8082);
      expect(api).toMatch(/^\s*listen 8082;$/m);
      expect(api).not.toContain('proxy_protocol');
      expect(api).not.toMatch(/\bssl\b/);
      expect(api).toMatch(/location \/v1\/ \{\s*content_by_lua_block \{ require\("edge.setup"\).domains_api\(\) \}\s*\}/);
      expect(api).toMatch(/location \/ \{\s*return 404;\s*\}/);
      expect(api).toMatch(/client_max_body_size \d+k;/);
      // No other server listens on it, and it serves nothing of the traffic ports.
      expect(conf.match(/listen [^;]*\b8082\b/g)).toHaveLength(1);
      expect(api).not.toContain('ssl_certificate_by_lua');
      expect(api).not.toContain('proxy_pass');
    }
  });

  test('the bearer token by the name of its variable only (EDGE_API_TOKEN, passed through by nginx)', () => {
    expect(prod).toMatch(/^env EDGE_API_TOKEN;$/m);
    expect(initTable(prod)).toMatch(/domains_api = \{\s*token_env = "EDGE_API_TOKEN",\s*\}/);
  });
});

test('no secret value: only the names of the variables that hold them', () => {
  for (const conf of [prod, dev]) {
    expect(conf).not.toMatch(/password|auth_token|AUTH_TOKEN|secret\s*=/i);
    expect(conf).toMatch(/auth_env = "REDIS_AUTH"/);
  }
});

test('pods: no user directive (non-root), no dynamic modules (OpenResty), logs to stdout/stderr', () => {
  expect(prod).not.toMatch(/^user /m);
  expect(prod).not.toContain('load_module');
  expect(prod).toContain('error_log stderr warn;');
  expect(prod).toContain('access_log /dev/stdout edge;');
  expect(prod).toContain('worker_processes 2;');
});

test('the local profile: same renderer, loopback ports, Debian modules, the test ACME server\'s CA trusted by Lua', () => {
  const conf = renderNginxConf(localNginxOptions({
    instance: { name: 'a', httpPort: 18080, httpsPort: 18443, statusPort: 18081, apiPort: 18082, dir: '/tmp/x' },
    edgeLuaDir: '/repo/lua', autoSslTree: '/opt/tree', loadModules: ['/usr/lib/nginx/modules/ndk_http_module.so'],
    user: 'www-data', redisPort: 16379, acmeDirectory: 'https://127.0.0.1:14000/dir', acmeApiCaFile: '/tmp/ca.pem',
    domainCheckUrl: 'http://127.0.0.1:1/check', originUrl: 'http://127.0.0.1:2', fallbackCert: '/tmp/f.crt', fallbackKey: '/tmp/f.key',
  }));
  expect(conf).toMatch(/^user www-data;$/m);
  expect(conf.indexOf('load_module /usr/lib/nginx/modules/ndk_http_module.so;')).toBeLessThan(conf.indexOf('events {'));
  expect(conf).toContain('listen 127.0.0.1:18443 ssl http2 default_server proxy_protocol;');
  expect(conf).toContain('lua_ssl_trusted_certificate /tmp/ca.pem;');
  expect(conf).toContain('lua_package_path "/repo/lua/?.lua;/opt/tree/share/lua/5.1/?.lua;;";');
  // A plain-http origin (the local stand-in) gets no TLS settings.
  expect(conf).not.toContain('proxy_ssl_verify');
});

test('the local profile\'s origin: a name resolved through the given DNS server, verified against the given CA bundle', () => {
  const conf = renderNginxConf(localNginxOptions({
    instance: { name: 'a', httpPort: 18080, httpsPort: 18443, statusPort: 18081, apiPort: 18082, dir: '/tmp/x' },
    edgeLuaDir: '/repo/lua', autoSslTree: '/opt/tree', loadModules: [], redisPort: 16379,
    acmeDirectory: 'https://127.0.0.1:14000/dir', acmeApiCaFile: '/tmp/ca.pem', trustedCaFile: '/tmp/trusted.pem',
    domainCheckUrl: 'http://127.0.0.1:1/check', originUrl: 'https://origin.local.test:18444', originResolver: '127.0.0.1:18053',
    fallbackCert: '/tmp/f.crt', fallbackKey: '/tmp/f.key',
  }));
  expect(initTable(conf)).toMatch(/origin = \{\s+host = "origin.local.test",\s+port = 18444,\s+tls = true,\s+resolver = "127.0.0.1:18053",/);
  expect(conf).toContain('proxy_ssl_name origin.local.test;');
  expect(conf).toContain('proxy_ssl_trusted_certificate /tmp/trusted.pem;');
  expect(conf).toContain('lua_ssl_trusted_certificate /tmp/trusted.pem;');
});

describe('toLua', () => {
  test('writes tables, lists, strings, numbers and booleans', () => {
    expect(toLua({ a: 'x', b: 2, c: true, d: ['p', 'q'], 'not-ident': 1, skipped: undefined })).toBe(
      '{\n  a = "x",\n  b = 2,\n  c = true,\n  d = {\n    "p",\n    "q",\n  },\n  ["not-ident"] = 1,\n}');
  });

  test('escapes quotes and backslashes', () => {
    expect(toLua('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  test('refuses control characters and non-ASCII', () => {
    expect(() => toLua('a\nb')).toThrow(/printable ASCII/);
    expect(() => toLua('é')).toThrow(/printable ASCII/);
    expect(() => toLua(Number.NaN)).toThrow(/finite/);
  });
});
