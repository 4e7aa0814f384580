-- Test harness for test/integration/lua-in-nginx.test.ts: exposes our modules (lua/edge/*)
-- through content handlers of a real nginx, without lua-resty-auto-ssl. allow_domain needs an
-- auto-ssl instance; here a stand-in provides what it uses: :get("redis") for the storage
-- adapter, and .storage, a stand-in for auto-ssl's storage wrapper (resty/auto-ssl/storage.lua):
-- get_cert(domain) decodes the JSON stored at "<domain>:latest", and .adapter is our adapter.
local cjson = require "cjson.safe"
local domain_check_module = require "edge.domain_check"
local allow_domain_module = require "edge.allow_domain"
local hostname = require "edge.hostname"
local metrics = require "edge.metrics"
local redis_storage = require "edge.redis_storage"
local cert_changes = require "edge.store.cert_changes"

local _M = {}

local domain_check, policy, auto_ssl_stand_in

-- A stand-in ACME account (edge.acme.provider's ensure): acme-client.test.ts and the e2e suite cover the real one.
-- Counts ensure() calls; fails while the shared-dict flag "harness:account_fail" is set.
local account_stand_in = {}
function account_stand_in.ensure(_, _)
  local dict = ngx.shared.edge_cache
  dict:incr("harness:account_ensure", 1, 0)
  if dict:get("harness:account_fail") then
    return nil, "stand-in account failure"
  end
  return true
end

-- conf: { redis = {...}, domain_check = {...}, policy = {...} } from the test.
function _M.init(conf)
  auto_ssl_stand_in = { options = { redis = conf.redis } }
  function auto_ssl_stand_in.get(self, name)
    return self.options[name]
  end
  local adapter = redis_storage.new(auto_ssl_stand_in)
  local storage = require("stand_in_storage").new(adapter)
  auto_ssl_stand_in.storage = storage

  domain_check = domain_check_module.new(conf.domain_check)
  local p = conf.policy
  policy = allow_domain_module.new({
    domain_check = domain_check,
    account = account_stand_in,
    edge_hostnames = p.edge_hostnames,
    order_cooloff = p.order_cooloff,
    peer_wait = p.peer_wait,
    order_timeout = p.order_timeout,
  })
end

local function now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

local harness_json = require "harness_json"
local reply, null = harness_json.reply, harness_json.null

-- GET /normalize?name=<name>
function _M.normalize()
  local name = ngx.req.get_uri_args()["name"]
  if name == true then
    name = nil
  end
  local normalized, why = hostname.normalize(name)
  reply({ name = null(normalized), why = null(why) })
end

-- GET /verdict?domain=<name>
function _M.verdict()
  local domain = ngx.req.get_uri_args()["domain"]
  local started = now_ms()
  local verdict = domain_check:verdict(domain)
  reply({ verdict = verdict, ms = now_ms() - started, worker = ngx.worker.id() })
end

-- GET /allow?domain=<name>[&renewal=true][&forget_local=1][&failed_order=1]
--   forget_local: first forget this instance's cool-off memory of the name (as a second
--                 instance would have none);
--   failed_order: afterwards run the policy's after_handshake as the handshake does when
--                 no certificate was served.
function _M.allow()
  local args = ngx.req.get_uri_args()
  local domain = args["domain"]
  if args["forget_local"] then
    ngx.shared.edge_cache:delete("cooloff:" .. domain)
  end
  local started = now_ms()
  local allowed = policy:allow(domain, auto_ssl_stand_in, nil, args["renewal"] == "true")
  local elapsed = now_ms() - started
  local ordering = ngx.ctx.edge_order
  if args["failed_order"] then
    policy:after_handshake(auto_ssl_stand_in, false) -- no certificate was served
  end
  reply({ allowed = allowed, ms = elapsed, order_started = ordering == domain })
end

-- GET /cached_denial?domain=<name>: what setup.lua asks before calling lua-resty-auto-ssl for
-- a name not in memory (true: the fallback is served without auto-ssl).
function _M.cached_denial()
  local domain = ngx.req.get_uri_args()["domain"]
  reply({ denied = policy:cached_denial(domain) })
end

-- GET /account[?fail=1|0]: makes the stand-in account fail (or work again); tells how often
-- the policy asked for the account.
function _M.account()
  local dict = ngx.shared.edge_cache
  local fail = ngx.req.get_uri_args()["fail"]
  if fail == "1" then
    dict:set("harness:account_fail", true)
  elseif fail == "0" then
    dict:delete("harness:account_fail")
  end
  reply({ fail = dict:get("harness:account_fail") == true, ensure_calls = dict:get("harness:account_ensure") or 0 })
end

-- GET /storage?op=get|set|add|replace|delete|ttl|keys_with_suffix&key=&value=&exptime=&suffix=
-- Runs one method of our storage adapter (edge.redis_storage) and returns what it returned.
function _M.storage()
  local args = ngx.req.get_uri_args()
  local adapter = auto_ssl_stand_in.storage.adapter
  local op, key, value = args["op"], args["key"], args["value"]
  local exptime = tonumber(args["exptime"] or "")
  local started = now_ms()
  local result, err
  if op == "get" then
    result, err = adapter:get(key)
  elseif op == "set" then
    result, err = adapter:set(key, value, exptime and { exptime = exptime } or nil)
  elseif op == "add" then
    result, err = adapter:add(key, value, exptime)
  elseif op == "replace" then
    result, err = adapter:replace(key, value)
  elseif op == "delete" then
    result, err = adapter:delete(key)
  elseif op == "ttl" then
    result, err = adapter:ttl(key)
  elseif op == "keys_with_suffix" then
    result, err = adapter:keys_with_suffix(args["suffix"])
    if type(result) == "table" and #result == 0 then
      result = cjson.empty_array
    end
  else
    ngx.status = 400
    reply({ error = "unknown op" })
    return
  end
  reply({ result = null(result), err = null(err), ms = now_ms() - started })
end

-- GET /cert_changes?seen=<sequence>: what the store's change feed reports after that sequence.
function _M.cert_changes()
  local seen = tonumber(ngx.req.get_uri_args()["seen"])
  local changes, err = cert_changes.since(auto_ssl_stand_in.storage.adapter, seen)
  reply({ changes = null(changes), err = null(err) })
end

-- GET /metrics: our counters, Prometheus text.
function _M.metrics()
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(metrics.render())
end

return _M
