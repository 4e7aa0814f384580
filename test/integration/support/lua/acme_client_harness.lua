-- Test harness for test/integration/acme-client.test.ts: exposes edge.acme.client through
-- content handlers of a real nginx (no lua-resty-auto-ssl). The http-01 challenge store is a
-- shared dict here (Redis in production); /.well-known/acme-challenge/<token> answers from it.
-- Requests are JSON bodies; replies are JSON. Test keys only: this harness returns the account
-- key it generated so the test can reuse it from another nginx.
local cjson = require "cjson.safe"
local acme = require "edge.acme.client"
local crypto = require "edge.acme.crypto"

local _M = {}

local function dict()
  return ngx.shared.acme_challenges
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

local function request_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  return cjson.decode(body or "{}") or {}
end

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Challenge store for one request: records what it put; "wrong" stores a bad key authorization.
local function challenges(mode, log)
  return {
    put = function(token, key_authorization)
      log.put[#log.put + 1] = token
      local value = mode == "wrong" and (key_authorization .. "-wrong") or key_authorization
      return dict():set("token:" .. token, value, 300)
    end,
    remove = function(token)
      log.removed[#log.removed + 1] = token
      dict():delete("token:" .. token)
    end,
  }
end

-- A new client per request (the worker's nonce pool and keepalive connections are shared).
local function client_for(conf, log)
  local key, err
  if conf.account_key_pem then
    key, err = crypto.key_from_pem(conf.account_key_pem)
    if not key then
      return nil, "account key: " .. tostring(err)
    end
  else
    key = crypto.generate_key(conf.account_key_type or "ec-p256")
  end
  local c = acme.new({
    directory_url = conf.directory_url,
    timeout = conf.timeout,
    contact = conf.contact,
    account_key = key,
    account_url = conf.account_url,
    challenges = challenges(conf.challenge_mode, log),
  })
  return c, key
end

function _M.register()
  local conf = request_body()
  local log = { put = {}, removed = {} }
  local started = now()
  local c, key = client_for(conf, log)
  if not c then
    return reply({ err = key })
  end
  local url, err, problem = c:register()
  reply({
    account_url = url, err = err, problem = problem, ms = (now() - started) * 1000,
    account_key_pem = crypto.key_to_pem(key), stats = c.stats,
  })
end

function _M.directory()
  local conf = request_body()
  local c = client_for(conf, { put = {}, removed = {} })
  local dir, err, problem = c:directory()
  reply({ directory = dir, err = err, problem = problem })
end

-- ARI: the certificate's identifier (edge.acme.crypto) and the CA's window for it
-- (edge.acme.renewal_info). offered = false when the directory has no renewalInfo.
function _M.renewal_info()
  local conf = request_body()
  local cert_id, id_err = crypto.ari_cert_id(conf.cert_pem)
  if not cert_id then
    return reply({ err = "ari_cert_id: " .. tostring(id_err) })
  end
  local c = client_for(conf, { put = {}, removed = {} })
  local window, err = require("edge.acme.renewal_info").fetch(c, conf.cert_id or cert_id)
  reply({ cert_id = cert_id, offered = window ~= false, window = window or nil, err = err })
end

function _M.order()
  local conf = request_body()
  local log = { put = {}, removed = {} }
  local started = now()
  local c, key = client_for(conf, log)
  if not c then
    return reply({ err = key })
  end
  local cert, err, problem = c:order(conf.names, {
    key_type = conf.key_type,
    deadline = conf.deadline_s and (started + conf.deadline_s) or nil,
    profile = conf.profile,
    replaces = conf.replaces,
  })
  local left = {}
  for _, token in ipairs(log.put) do
    if dict():get("token:" .. token) then
      left[#left + 1] = token
    end
  end
  reply({
    cert = cert, err = err, problem = problem, ms = (now() - started) * 1000,
    account_url = c.account_url, account_key_pem = crypto.key_to_pem(key),
    tokens_put = #log.put, tokens_removed = #log.removed, tokens_left = #left, stats = c.stats,
  })
end

-- Several orders at once from this one request, each in its own light thread.
function _M.orders()
  local conf = request_body()
  local started = now()
  local threads = {}
  for i, name in ipairs(conf.names) do
    threads[i] = ngx.thread.spawn(function()
      local log = { put = {}, removed = {} }
      local c = client_for(conf, log)
      local t0 = now()
      local cert, err, problem = c:order({ name }, {
        key_type = conf.key_type,
        deadline = conf.deadline_s and (t0 + conf.deadline_s) or nil,
      })
      return { name = name, ok = cert ~= nil, cert_pem = cert and cert.cert_pem, err = err, problem = problem,
        ms = (now() - t0) * 1000, tokens_put = #log.put, tokens_removed = #log.removed }
    end)
  end
  local results = {}
  for i, th in ipairs(threads) do
    local ok, res = ngx.thread.wait(th)
    results[i] = ok and res or { ok = false, err = tostring(res) }
  end
  -- The worker's resident memory once garbage is collected: a leak per issuance shows here.
  collectgarbage("collect")
  collectgarbage("collect")
  local status = io.open("/proc/self/status"):read("*a")
  reply({ results = results, ms = (now() - started) * 1000, pid = ngx.worker.pid(),
    rss_kb = tonumber(status:match("VmRSS:%s+(%d+)")) })
end

-- A stand-in for lua-resty-auto-ssl's storage (StandInStore: NOT Redis), over the shared
-- dict so that both workers see it: what edge.acme.provider reads and writes, with expiries.
-- Each `space` is a store of its own (an environment).
local function stand_in_storage(space)
  local function key_of(key)
    return "store:" .. space .. ":" .. key
  end
  local adapter = {}
  function adapter.get(_, key)
    return dict():get(key_of(key))
  end
  function adapter.set(_, key, value, options)
    return dict():set(key_of(key), value, options and options.exptime or 0)
  end
  function adapter.add(_, key, value, exptime)
    local ok, err = dict():add(key_of(key), value, exptime or 0)
    if not ok and err == "exists" then
      return false
    end
    return ok, err
  end
  function adapter.delete(_, key)
    return dict():delete(key_of(key))
  end
  function adapter.ttl(_, key)
    return dict():ttl(key_of(key)) or -2
  end
  local storage = { adapter = adapter }
  function storage.set_cert(self, domain, fullchain_pem, privkey_pem, cert_pem, expiry)
    return self.adapter:set(domain .. ":latest", cjson.encode({
      fullchain_pem = fullchain_pem, privkey_pem = privkey_pem, cert_pem = cert_pem, expiry = expiry,
    }))
  end
  return storage
end

-- edge.acme.provider.issue_cert(auto_ssl, name) against the stand-in store; replies with what
-- it returned and what it left in the store (TTLs in seconds, -2 when absent).
function _M.provider_issue()
  local conf = request_body()
  local provider = require "edge.acme.provider"
  provider.configure({ directory_url = conf.directory_url, timeout = 5000, order_timeout = 15 })
  local storage = stand_in_storage(conf.space)
  local store = storage.adapter
  local cert, err = provider.issue_cert({ storage = storage }, conf.name)
  local account = cjson.decode(store:get("edge:acme-account") or "null")
  reply({
    ok = cert ~= nil, err = err, stored = store:get(conf.name .. ":latest") ~= nil,
    account_url = account and account.url,
    order_mark_ttl = store:ttl("edge:order:" .. conf.name),
    account_cooloff_ttl = store:ttl("edge:acme-account:cooloff"),
  })
end

-- pebble's http-01 validation lands here (from the client's challenge store, or the provider's).
function _M.challenge()
  local token = ngx.var.uri:match("^/%.well%-known/acme%-challenge/([%w_-]+)$")
  local value = token and dict():get("token:" .. token)
  for _, space in ipairs(token and { "direct", "fake" } or {}) do
    value = value or dict():get("store:" .. space .. ":" .. ngx.var.host .. ":challenge:" .. token)
  end
  if not value then
    return ngx.exit(404)
  end
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(value)
end

-- Tokens currently stored.
function _M.tokens()
  local keys = dict():get_keys(0)
  reply({ count = #keys })
end

return _M
