-- Test harness for test/integration/renewal.test.ts: the renewal index (edge.store.cert_changes
-- through edge.redis_storage), the lease (edge.renewal.lease), the renewer (edge.renewal.renewer)
-- and its job (edge.renewal.job) in a real nginx against a real Redis and a real domain-check
-- server. No lua-resty-auto-ssl and no ACME server; stand-ins, named so, take their place:
--   * the stand-in storage: auto-ssl's storage wrapper (resty/auto-ssl/storage.lua) as the
--     renewer uses it: get_cert(domain) decodes the JSON at "<domain>:latest" (and counts the
--     calls, per name), set_cert writes it; .adapter is our adapter (edge.redis_storage);
--   * the stand-in issuer: instead of an ACME order, stores a "fresh" certificate the test put
--     at "<prefix>:harness:fresh-cert" (an entry's JSON) through the stand-in storage, as
--     edge.acme.provider.issue_cert does; or fails, when told to ("fail"; "ratelimit": also
--     setting the account's cool-off mark, as the provider does); or takes 2 s first ("slow");
--   * the stand-in renewal_info: the CA's ARI answer the test describes (none, an error, a window).
-- The domain check (edge.domain_check) and the ARI identifier (edge.acme.crypto.ari_cert_id) are the real ones.
local cjson = require "cjson.safe"
local redis_storage = require "edge.redis_storage"
local domain_check_module = require "edge.domain_check"
local lease_module = require "edge.renewal.lease"
local renewer_module = require "edge.renewal.renewer"
local crypto = require "edge.acme.crypto"
local metrics = require "edge.metrics"

local _M = {}

local conf
local adapters = {}
local leases = {}
local domain_check

-- conf: { redis = { host, port, connect_timeout, read_timeout }, domain_check = { url, timeout },
--         job = nil | { prefix, lease_ttl, pass_interval, renewals_per_hour, issuer } }
function _M.init(c)
  conf = c
  domain_check = domain_check_module.new(c.domain_check)
end

-- Our adapter for an environment prefix (a test's own), as auto-ssl would make it.
local function adapter_for(prefix, port)
  local id = prefix .. "@" .. tostring(port or conf.redis.port)
  if not adapters[id] then
    local options = {
      host = conf.redis.host, port = port or conf.redis.port, prefix = prefix,
      connect_timeout = conf.redis.connect_timeout, read_timeout = conf.redis.read_timeout,
    }
    adapters[id] = redis_storage.new({ get = function(_, name) return name == "redis" and options or nil end })
  end
  return adapters[id]
end

-- auto-ssl's storage wrapper, stood in (support/lua/stand_in_storage.lua); reads counted per name.
local function stand_in_storage(adapter, reads)
  return require("stand_in_storage").new(adapter, function(domain)
    reads[domain] = (reads[domain] or 0) + 1
  end)
end

-- The stand-in issuer (see the top). issued: list of { name, replaces }, filled as it is called.
local function stand_in_issuer(storage, mode, issued)
  return function(domain, replaces)
    issued[#issued + 1] = { name = domain, replaces = replaces or ngx.null }
    if mode == "fail" then
      return nil, "stand-in issuer failure"
    elseif mode == "ratelimit" then
      -- As edge.acme.provider does when the CA rate-limits the account: the cool-off mark.
      storage.adapter:set("edge:acme-account:cooloff", "1", { exptime = 60 })
      return nil, "stand-in issuer: the account is rate-limited"
    elseif mode == "slow" then
      -- An order that takes a while (a renewer may take the lease over meanwhile, or its
      -- worker be told to exit); noted in the store as it starts: "<prefix>:harness:ordering".
      storage.adapter:with_connection(function(connection)
        return connection:command("RPUSH", storage.adapter:prefixed("harness:ordering"), domain)
      end)
      ngx.sleep(2)
    end
    local fresh, err = storage.adapter:get("harness:fresh-cert")
    if not fresh then
      return nil, "stand-in issuer: no fresh certificate to store: " .. tostring(err)
    end
    local cert = cjson.decode(fresh)
    local _, expiry = crypto.cert_validity(cert.cert_pem)
    local ok, store_err = storage:set_cert(domain, cert.fullchain_pem, cert.privkey_pem, cert.cert_pem, expiry)
    if not ok then
      return nil, "stand-in issuer: not stored: " .. tostring(store_err)
    end
    cert.expiry = expiry
    return cert
  end
end

-- The stand-in renewal_info. ari: nil / "none" (the CA offers no ARI), { error = text }, or
-- { window_start, window_end, retry_after }. asked: list of the cert ids asked about.
local function stand_in_renewal_info(ari, asked)
  return function(cert_id)
    asked[#asked + 1] = cert_id
    if ari == nil or ari == "none" then
      return false
    end
    if ari.error then
      return nil, ari.error
    end
    return { window_start = ari.window_start, window_end = ari.window_end, retry_after = ari.retry_after }
  end
end

local function make_renewer(o, record)
  local adapter = adapter_for(o.prefix)
  local storage = stand_in_storage(adapter, record.reads)
  return renewer_module.new({
    storage = storage,
    issue = stand_in_issuer(storage, o.issuer, record.issued),
    domain_check = domain_check,
    renewal_info = stand_in_renewal_info(o.ari, record.ari_asked),
    cert_id = crypto.ari_cert_id,
    renewals_per_hour = o.renewals_per_hour or 60,
    pass_interval = o.pass_interval or 300,
    batch = o.batch,
  })
end

local harness_json = require "harness_json"
local body, reply, null = harness_json.body, harness_json.reply, harness_json.null

-- POST /pass {prefix, renewals_per_hour, pass_interval, batch, issuer = "ok"|"fail"|"ratelimit"|"slow", ari,
-- lease_lost_after_orders}: one renewer pass with the stand-ins; keep() says the lease is held
-- until the stand-in issuer has been called that many times (default: always).
function _M.pass()
  local o = body()
  local record = { reads = {}, issued = {}, ari_asked = {} }
  local renewer = make_renewer(o, record)
  local keeps = 0
  local summary, err = renewer:pass(function()
    keeps = keeps + 1
    return o.lease_lost_after_orders == nil or #record.issued < o.lease_lost_after_orders
  end)
  reply({ summary = null(summary), err = null(err), reads = record.reads, issued = record.issued,
    ari_asked = record.ari_asked, keeps = keeps })
end

-- POST /store {prefix, op = "set"|"delete"|"cert_id", name, value}: our adapter's set/delete of
-- "<name>:latest" (which runs the store's script), or the ARI identifier of the stored certificate.
function _M.store()
  local o = body()
  local adapter = adapter_for(o.prefix)
  local result, err
  if o.op == "set" then
    result, err = adapter:set(o.name .. ":latest", o.value)
  elseif o.op == "delete" then
    result, err = adapter:delete(o.name .. ":latest")
  elseif o.op == "cert_id" then
    local json = adapter:get(o.name .. ":latest")
    local entry = json and cjson.decode(json)
    if entry then
      result, err = crypto.ari_cert_id(entry.cert_pem)
    end
  end
  reply({ result = null(result), err = null(err) })
end

-- POST /lease {op, id, prefix, key, ttl, holder}: one lease object per id, kept by this (only) worker.
--   new, hold, held, keep, release, holder_of; break: its adapter points at a port nobody listens on.
function _M.lease()
  local o = body()
  local lease = leases[o.id]
  local a, b
  if o.op == "new" then
    leases[o.id] = lease_module.new(adapter_for(o.prefix), { key = o.key, ttl = o.ttl, holder = o.holder })
    a = leases[o.id].holder
  elseif o.op == "hold" then
    a, b = lease:hold()
  elseif o.op == "held" then
    a = lease:held()
  elseif o.op == "keep" then
    a = lease:keep()
  elseif o.op == "release" then
    a, b = lease:release()
  elseif o.op == "holder_of" then
    a, b = lease_module.holder_of(adapter_for(o.prefix), o.key)
  elseif o.op == "break" then
    lease.adapter = adapter_for(o.prefix, o.port)
    a = true
  end
  reply({ result = null(a), err = null(b) })
end

-- GET /metrics: our counters and gauges, Prometheus text.
function _M.metrics()
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(metrics.render())
end

-- GET /whoami: this worker.
function _M.whoami()
  reply({ pid = ngx.worker.pid(), id = ngx.worker.id() })
end

-- init_worker: where conf.job is given, the renewal job (edge.renewal.job) with the stand-ins.
function _M.init_worker()
  if not conf.job then
    return
  end
  local j = conf.job
  local record = { reads = {}, issued = {}, ari_asked = {} }
  -- The job runs for the life of the worker: what the stand-ins record is not kept.
  setmetatable(record.issued, { __newindex = function() end })
  setmetatable(record.ari_asked, { __newindex = function() end })
  local renewer = make_renewer({ prefix = j.prefix, issuer = j.issuer or "ok", renewals_per_hour = j.renewals_per_hour,
    pass_interval = j.pass_interval }, { reads = setmetatable({}, { __newindex = function() end }),
    issued = record.issued, ari_asked = record.ari_asked })
  require("edge.renewal.job").start({
    adapter = adapter_for(j.prefix), renewer = renewer, lease_ttl = j.lease_ttl, pass_interval = j.pass_interval,
  })
end

return _M
