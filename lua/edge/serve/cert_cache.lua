-- The handshake's certificate cache: per worker, the parsed chain and key of each name, served
-- with ngx.ssl.set_cert/set_priv_key. A hit never reaches lua-resty-auto-ssl, which converts
-- the DER chain and key with OpenSSL on every handshake. Filled in the background after
-- auto-ssl served a name; a name is forgotten (here and in auto-ssl's shared dict) when the
-- store's change feed (edge.store.cert_changes) says its certificate was replaced or deleted,
-- which every worker polls: a renewal, a re-issue or a delete anywhere is served everywhere
-- within one poll interval. If the store cannot be reached, cached certificates keep serving.
local lrucache = require "resty.lrucache"
local ssl = require "ngx.ssl"
local cjson = require "cjson.safe"
local cert_changes = require "edge.store.cert_changes"
local domain_check = require "edge.domain_check"

local _M = {}

local clear_certs, set_cert, set_priv_key = ssl.clear_certs, ssl.set_cert, ssl.set_priv_key

local options -- from init: size, max_age, poll_interval (s)
local cache -- per worker: name -> { chain = parsed chain, key = parsed key }
local adapter -- the store (edge.redis_storage)
-- The feed's sequence this worker has acted on; nil until its first poll.
local seen
-- Names with a load in flight, and the sequence seen when each load started: a load that
-- overlaps an invalidation of its name is dropped (it may have read the old entry).
local loading = {}
local invalidated_at = {}

-- Every worker of the instance acts on the feed; the latest sequence any of them acted on is
-- kept here, so a worker started later (a respawn) begins from it rather than from "now".
local SEEN_KEY = "cert_changes:seen"

-- opts: size (entries per worker), max_age (s: a safety net; changes arrive through the feed),
-- poll_interval (s).
function _M.init(opts)
  options = {
    size = opts.size or 1000,
    max_age = opts.max_age or 3600,
    poll_interval = opts.poll_interval or 5,
  }
end

-- The parsed certificate of a name, or nil. The handshake's hot path.
function _M.get(name)
  return cache:get(name)
end

-- Puts the entry's certificate on the current handshake. Returns true, or nil and an error.
function _M.serve(entry)
  local ok, err = clear_certs()
  if ok then
    ok, err = set_cert(entry.chain)
  end
  if ok then
    ok, err = set_priv_key(entry.key)
  end
  return ok, err
end

-- Forgets a name: here, and in lua-resty-auto-ssl's shared dict (all workers of the instance).
local function forget(name)
  cache:delete(name)
  local dict = ngx.shared.auto_ssl
  dict:delete("domain:fullchain_der:" .. name)
  dict:delete("domain:privkey_der:" .. name)
  dict:delete("domain:ocsp:" .. name)
  -- A changed or removed certificate is a reason to ask the domain check again (the domains
  -- API's DELETE: a pod must not re-issue on a cached "allowed").
  local verdicts = ngx.shared.edge_cache
  if verdicts then
    verdicts:delete(domain_check.cache_key(name))
  end
  if loading[name] then
    invalidated_at[name] = seen
  end
end

local function forget_everything()
  cache:flush_all()
  local dict = ngx.shared.auto_ssl
  for _, key in ipairs(dict:get_keys(0)) do
    if key:find("^domain:") then
      dict:delete(key)
    end
  end
  for name in pairs(loading) do
    invalidated_at[name] = seen
  end
end

local function parse(json)
  local entry, err = cjson.decode(json)
  if not entry or not entry.fullchain_pem or not entry.privkey_pem then
    return nil, "unreadable entry: " .. tostring(err or "no certificate or key")
  end
  local chain, key
  chain, err = ssl.parse_pem_cert(entry.fullchain_pem)
  if chain then
    key, err = ssl.parse_pem_priv_key(entry.privkey_pem)
  end
  if not key then
    return nil, err
  end
  return { chain = chain, key = key }
end

local function load(premature, name, started_at)
  local json, err
  if not premature then
    json, err = adapter:get(name .. ":latest")
  end
  local overtaken = invalidated_at[name] ~= nil and invalidated_at[name] ~= started_at
  loading[name] = nil
  if next(loading) == nil then
    invalidated_at = {}
  end
  if premature or overtaken or json == nil then
    if err then
      ngx.log(ngx.INFO, "edge: certificate of ", name, " not cached: ", err)
    end
    return
  end
  local entry
  entry, err = parse(json)
  if not entry then
    ngx.log(ngx.WARN, "edge: stored certificate of ", name, " not cached: ", err)
    return
  end
  cache:set(name, entry, options.max_age)
end

-- After lua-resty-auto-ssl served a name this worker had not cached: parse it in the background,
-- off the handshake, for the next one.
function _M.load_later(name)
  if loading[name] then
    return
  end
  local ok, err = ngx.timer.at(0, load, name, seen)
  if not ok then
    ngx.log(ngx.INFO, "edge: certificate of ", name, " not cached: ", err)
    return
  end
  loading[name] = true
  invalidated_at[name] = seen
end

local function poll()
  local shared = ngx.shared.edge_cache
  local from = seen or shared:get(SEEN_KEY)
  local changes, err = cert_changes.since(adapter, from or -1)
  if not changes then
    ngx.log(ngx.INFO, "edge: certificate change feed not read: ", err)
    return
  end
  if from == nil then
    -- The instance's first look at the feed: nothing of it was cached yet.
    seen = changes.seq
  elseif changes.everything then
    seen = changes.seq
    forget_everything()
  else
    seen = changes.seq
    for _, name in ipairs(changes.names) do
      forget(name)
    end
  end
  if (shared:get(SEEN_KEY) or -1) < seen then
    shared:set(SEEN_KEY, seen)
  end
end

local function poll_loop(premature)
  if premature then
    return
  end
  local ok, err = pcall(poll)
  if not ok then
    ngx.log(ngx.ERR, "edge: certificate change feed: ", err)
  end
end

-- store_adapter: the store (auto-ssl's storage adapter instance).
function _M.init_worker(store_adapter)
  adapter = store_adapter
  cache = assert(lrucache.new(options.size))
  assert(ngx.timer.at(0, poll_loop))
  assert(ngx.timer.every(options.poll_interval, poll_loop))
end

return _M
