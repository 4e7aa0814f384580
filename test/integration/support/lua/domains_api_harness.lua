-- The domains API (edge.api.domains) in a harness nginx, without lua-resty-auto-ssl: built as
-- edge.setup builds it, over edge.redis_storage and a real Redis, with the DNS pre-check
-- when the config names a resolver. Also a control endpoint (on its own port, never the API's)
-- that writes a name's state with edge.store.domain_status.set, as the registration queue and
-- the ACME provider do, for states no issuer reaches in the harness.
local cjson = require "cjson.safe"

local _M = {}
local api
local adapter

-- config: token, redis {host, port, prefix, connect_timeout, read_timeout}, edge_hostnames,
-- profile, dns_precheck (optional: resolver, names, addresses, timeout).
function _M.init(config)
  -- edge.redis_storage reads its options from auto-ssl's :get("redis"); this is all it needs of it.
  local options_holder = {
    get = function(_, key)
      if key == "redis" then
        return config.redis
      end
    end,
  }
  adapter = require("edge.redis_storage").new(options_holder)
  local dns_precheck = config.dns_precheck and require("edge.policy.dns_precheck").new(config.dns_precheck)
  api = require("edge.api.domains").new({
    token = config.token,
    adapter = adapter,
    edge_hostnames = config.edge_hostnames,
    profile = config.profile,
    dns_precheck = dns_precheck,
  })
end

function _M.handle()
  api:handle()
end

-- POST {name, state, fields}: domain_status.set(adapter, name, state, fields).
function _M.set_state()
  ngx.req.read_body()
  local body = cjson.decode(ngx.req.get_body_data() or "")
  local ok, err = require("edge.store.domain_status").set(adapter, body.name, body.state, body.fields or {})
  ngx.status = ok and 200 or 500
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode({ ok = ok or false, error = err }))
end

return _M
