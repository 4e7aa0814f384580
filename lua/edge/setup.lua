-- Wires lua-resty-auto-ssl into nginx with our modules: called from nginx.conf's
-- init_by_lua, init_worker_by_lua, ssl_certificate_by_lua and content handlers.
local ssl = require "ngx.ssl"
local hostname = require "edge.hostname"
local metrics = require "edge.metrics"
local cert_cache = require "edge.serve.cert_cache"

local _M = {}

local auto_ssl
local policy
local config -- the table init() was given
local domain_check
local domains_api
-- The name _M.ssl_certificate normalised, for auto-ssl's request_domain: set right before
-- auto_ssl:ssl_certificate(), which asks for it first, before anything can yield.
local handshake_domain

local function required_env(name)
  local value = os.getenv(name)
  if not value or value == "" then
    error("edge: environment variable " .. name .. " is not set (see `env` in nginx.conf)")
  end
  return value
end

-- What lua-resty-auto-ssl does at start that our ACME client makes unneeded: it checks for
-- bash, curl and openssl, writes dehydrated's config and a hook-server secret (init_master),
-- makes dehydrated's directories and starts sockproc and its renewal job (init_worker): every
-- replica scanning every name daily. We keep only the storage setup; issuance goes through
-- edge.acme.provider, renewals through edge.renewal (one renewer per environment).
local function replace_auto_ssl_start()
  package.loaded["resty.auto-ssl.init_master"] = function(instance)
    local adapter = require(instance:get("storage_adapter")).new(instance)
    instance.storage = require("resty.auto-ssl.storage").new({
      adapter = adapter,
      json_adapter = require(instance:get("json_adapter")).new(instance),
    })
  end
  package.loaded["resty.auto-ssl.init_worker"] = function(instance)
    require("resty.auto-ssl.utils.random_seed")()
  end
end

-- conf: the table rendered into nginx.conf by charts/nginx-conf.ts.
function _M.init(conf)
  config = conf
  local provider = require "edge.acme.provider"
  provider.configure(conf.acme)
  -- auto-ssl requires its provider by this name and has no option for another.
  package.loaded["resty.auto-ssl.ssl_providers.lets_encrypt"] = provider
  replace_auto_ssl_start()

  local redis_options = {
    host = required_env(conf.redis.host_env),
    port = conf.redis.port,
    ssl = conf.redis.ssl,
    ssl_verify = true,
    password = conf.redis.auth_env and required_env(conf.redis.auth_env) or nil,
    prefix = conf.redis.prefix,
    connect_timeout = conf.redis.connect_timeout,
    read_timeout = conf.redis.read_timeout,
  }

  auto_ssl = require("resty.auto-ssl").new({
    dir = conf.auto_ssl.dir,
    storage_adapter = "edge.redis_storage",
    redis = redis_options,
    -- Names reach auto-ssl only after _M.ssl_certificate normalised them.
    request_domain = function()
      return handshake_domain
    end,
    allow_domain = function(domain, instance, ssl_options, renewal)
      return policy:allow(domain, instance, ssl_options, renewal)
    end,
    -- Let's Encrypt certificates carry no OCSP URL since 2025: the failure is expected.
    ocsp_stapling_error_level = ngx.DEBUG,
  })

  -- conf.domain_check carries both modules' options (url, timeout, TTLs; edge_hostnames,
  -- order_cooloff, peer_wait), under the names they read.
  domain_check = require("edge.domain_check").new(conf.domain_check)
  local dns_precheck = conf.dns_precheck and require("edge.policy.dns_precheck").new(conf.dns_precheck)
  local policy_options = setmetatable({
    dns_precheck = dns_precheck,
    domain_check = domain_check,
    account = provider,
    issue = provider.issue_cert,
    order_timeout = conf.acme.order_timeout,
  }, { __index = conf.domain_check })
  policy = require("edge.allow_domain").new(policy_options)

  cert_cache.init(conf.cert_cache)
  auto_ssl:init()
  domains_api = require("edge.api.domains").new({
    token = os.getenv(conf.domains_api.token_env),
    adapter = auto_ssl.storage.adapter,
    edge_hostnames = conf.domain_check.edge_hostnames,
    profile = conf.acme.profile,
    dns_precheck = dns_precheck,
  })
  if not os.getenv(conf.domains_api.token_env) then
    ngx.log(ngx.WARN, "edge: ", conf.domains_api.token_env, " is not set: the domains API refuses every call")
  end
  require("edge.serve.origin").init(conf.origin)
end

-- The environment's renewer (edge.renewal): this instance's worker 0 takes part in the lease.
local function start_renewal()
  local provider = require "edge.acme.provider"
  local storage = auto_ssl.storage
  local r = config.renewal
  local renewer = require("edge.renewal.renewer").new({
    storage = storage,
    issue = function(domain, replaces)
      return provider.issue_cert(auto_ssl, domain, { replaces = replaces })
    end,
    domain_check = domain_check,
    ari_offered = provider.offers_renewal_info,
    renewal_info = provider.renewal_info,
    cert_id = require("edge.acme.crypto").ari_cert_id,
    renewals_per_hour = r.renewals_per_hour,
    pass_interval = r.pass_interval,
    batch = r.batch,
  })
  require("edge.renewal.job").start({
    adapter = storage.adapter, renewer = renewer, lease_ttl = r.lease_ttl, pass_interval = r.pass_interval,
  })
end

function _M.init_worker()
  auto_ssl:init_worker()
  cert_cache.init_worker(auto_ssl.storage.adapter)
  require("edge.serve.origin").init_worker()
  start_renewal()
  require("edge.api.registration_queue").start({ policy = policy, auto_ssl = auto_ssl })
end

-- After a handshake served a certificate from the store or a new order: the name's first
-- trusted handshake is timed once (in a timer: the handshake does not wait for the store).
local function note_first_served(premature, domain)
  if premature then
    return
  end
  local elapsed = require("edge.store.domain_status").first_served(auto_ssl.storage.adapter, domain)
  if elapsed then
    metrics.observe("edge_domain_time_to_first_trusted_handshake_seconds", elapsed)
  end
end

-- Whether lua-resty-auto-ssl holds the name's certificate in this instance's memory.
local function in_memory(domain)
  return ngx.shared.auto_ssl:get("domain:fullchain_der:" .. domain) ~= nil
end

local server_name, cached_certificate = ssl.server_name, cert_cache.get
local worker_cache_hit = metrics.key("edge_handshakes_total", "certificate", "worker_cache")

-- The hot path: a name this worker holds parsed is served without lua-resty-auto-ssl.
local function served_from_worker_cache(name)
  local entry = cached_certificate(name)
  if entry and cert_cache.serve(entry) then
    metrics.inc_key(worker_cache_hit)
    return true
  end
  return false
end

-- Names that cannot be a customer's, and names the domain check denied (while its verdict is
-- cached), are answered with the fallback certificate before lua-resty-auto-ssl (which would
-- log a line for each handshake): no order, at most an info line.
function _M.ssl_certificate()
  local name = server_name()
  -- Only normalised names are cached, so a hit on the name as sent needs no normalising.
  if name and served_from_worker_cache(name) then
    return
  end
  if not name then
    metrics.inc("edge_handshakes_total", "certificate", "fallback_no_sni")
    return
  end
  local domain, why = hostname.normalize(name)
  if not domain then
    metrics.inc("edge_handshakes_total", "certificate", "fallback_invalid_name")
    ngx.log(ngx.INFO, "edge: refused server name (", why, ")")
    return
  end
  if domain ~= name and served_from_worker_cache(domain) then
    return
  end
  local cached = in_memory(domain)
  -- A name the domain check denied within its deny TTL: the fallback, without auto-ssl.
  if not cached and policy:cached_denial(domain) then
    metrics.inc("edge_handshakes_total", "certificate", "fallback_denied")
    return
  end
  handshake_domain = domain
  auto_ssl:ssl_certificate()
  -- Where the certificate came from: this instance's shared memory, the store, a new order, or
  -- none (the fallback). Once served, it is parsed for this worker's next handshakes.
  local served = cached or in_memory(domain)
  local source = "memory"
  if not cached then
    local ordered = policy:after_handshake(auto_ssl, served)
    source = not served and "fallback" or ordered and "issued" or "store"
  end
  if served then
    cert_cache.load_later(domain)
    if source ~= "memory" then
      ngx.timer.at(0, note_first_served, domain)
    end
  end
  metrics.inc("edge_handshakes_total", "certificate", source)
end

function _M.challenge_server()
  auto_ssl:challenge_server()
end

function _M.domains_api()
  domains_api:handle()
end

function _M.metrics()
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.print(metrics.render())
end

return _M
