-- Test harness for test/integration/origin-proxy.test.ts: our DNS client and a worker's origin
-- addresses (lua/edge/serve/*) behind content handlers of a real nginx.
local cjson = require "cjson.safe"
local dns_resolver = require "edge.serve.dns_resolver"
local origin = require "edge.serve.origin"

local _M = {}

local function reply(value)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(value))
end

local function now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

-- GET /dns?name=<name>&server=<ip:port>&timeout=<ms>&ipv6=1: one edge.serve.dns_resolver.resolve().
function _M.dns()
  local args = ngx.req.get_uri_args()
  local started = now_ms()
  local addresses, ttl_or_err = dns_resolver.resolve(args.name, {
    server = args.server,
    timeout = tonumber(args.timeout),
    ipv6 = args.ipv6 == "1",
  })
  reply({
    addresses = addresses or cjson.null,
    ttl = addresses and ttl_or_err or cjson.null,
    err = not addresses and ttl_or_err or cjson.null,
    ms = now_ms() - started,
  })
end

-- GET /addresses: this worker's origin addresses.
function _M.addresses()
  reply({ pid = ngx.worker.pid(), addresses = origin.addresses() })
end

return _M
