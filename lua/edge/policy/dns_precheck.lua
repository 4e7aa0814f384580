-- The DNS pre-check before any order: does the customer's name resolve to us, through a CNAME
-- to one of our published names, or to one of our static addresses? If it does not, Let's
-- Encrypt's validation would fail too, and it allows only 5 failed validations per name per hour.
--   pointing      a name in the CNAME chain, or an address, is ours: order
--   not_pointing  the name does not exist, has no addresses, or they are not ours: no order
--   unknown       the resolver failed (timeout, SERVFAIL): the order goes ahead, the CA decides
-- Verdicts are cached per instance for a short while (lookups of one name are rare: only before
-- orders, which are themselves cooled off).
local dns_resolver = require "edge.serve.dns_resolver"

local _M = {}
local mt = { __index = _M }

_M.POINTING, _M.NOT_POINTING, _M.UNKNOWN = "pointing", "not_pointing", "unknown"

local CACHE_SECONDS = 30
local DEFINITE_ERRORS = { "^no such name", "^no A records" }

local function set_of(list)
  local set = {}
  for _, item in ipairs(list or {}) do
    set[item:lower():gsub("%.$", "")] = true
  end
  return set
end

-- opts: resolver ("ip:port"), names, addresses (lists), timeout (ms), dict (shared dict name).
function _M.new(opts)
  return setmetatable({
    resolver = opts.resolver,
    names = set_of(opts.names),
    addresses = set_of(opts.addresses),
    timeout = opts.timeout or 2000,
    dict_name = opts.dict or "edge_cache",
  }, mt)
end

local function definite(err)
  for _, pattern in ipairs(DEFINITE_ERRORS) do
    if tostring(err):find(pattern) then
      return true
    end
  end
  return false
end

-- Returns the verdict and what the name resolves to (for the API's "dns" field).
function _M.check(self, domain)
  local cache = ngx.shared[self.dict_name]
  local cached = cache:get("dns:" .. domain)
  if cached then
    local verdict, detail = cached:match("^([^|]*)|(.*)$")
    return verdict, detail
  end
  local addresses, ttl_or_err, chain = dns_resolver.resolve(domain, { server = self.resolver, timeout = self.timeout })
  local verdict, detail
  local via = chain and #chain > 1 and (" via CNAME " .. table.concat(chain, " -> ", 2)) or ""
  if not addresses then
    verdict = definite(ttl_or_err) and _M.NOT_POINTING or _M.UNKNOWN
    detail = tostring(ttl_or_err) .. via
  else
    verdict = _M.NOT_POINTING
    for _, name in ipairs(chain or {}) do
      if self.names[name] then
        verdict = _M.POINTING
      end
    end
    for _, address in ipairs(addresses) do
      if self.addresses[address] then
        verdict = _M.POINTING
      end
    end
    detail = "resolves to " .. table.concat(addresses, ", ") .. via
  end
  if verdict ~= _M.UNKNOWN then
    cache:set("dns:" .. domain, verdict .. "|" .. detail, CACHE_SECONDS)
  else
    ngx.log(ngx.WARN, "edge: DNS pre-check of ", domain, " could not resolve it (ordering anyway): ", detail)
  end
  return verdict, detail
end

return _M
