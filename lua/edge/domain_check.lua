-- Asks the product's domain-check endpoint whether a name is one of ours:
-- GET <url>?domain=<name> answers 200 (yes) or 404 (no); anything else, a timeout or a
-- connection error is an error, which refuses the name (fail closed). Every verdict is cached
-- in a shared dict with its own TTL, and concurrent lookups of one name make one request.
local http_get = require "edge.http_get"
local metrics = require "edge.metrics"
local shm_lock = require "edge.shm_lock"

local _M = {}
local mt = { __index = _M }

_M.ALLOWED = "allowed"
_M.DENIED = "denied"
_M.ERROR = "error"

-- opts: url, timeout (ms), allow_ttl, deny_ttl, error_ttl (s), dict (shared dict name).
function _M.new(opts)
  assert(opts.url, "domain_check: url is required")
  local self = {
    url = opts.url,
    separator = opts.url:find("?", 1, true) and "&" or "?",
    timeout = opts.timeout or 2000,
    ttl = {
      [_M.ALLOWED] = opts.allow_ttl or 3600,
      [_M.DENIED] = opts.deny_ttl or 300,
      [_M.ERROR] = opts.error_ttl or 10,
    },
    dict_name = opts.dict or "edge_cache",
  }
  return setmetatable(self, mt)
end

local function cache_key(domain)
  return "verdict:" .. domain
end
_M.cache_key = cache_key

-- Asks the endpoint (no cache). Returns ALLOWED, DENIED or ERROR.
function _M.request(self, domain)
  local status, err = http_get.status(self.url .. self.separator .. "domain=" .. ngx.escape_uri(domain), {
    timeout = self.timeout,
  })
  if not status then
    metrics.inc("edge_domain_check_requests_total", "result", "failed")
    ngx.log(ngx.WARN, "edge: domain check for ", domain, " failed (refused until retry): ", err)
    return _M.ERROR
  end
  if status == 200 then
    metrics.inc("edge_domain_check_requests_total", "result", "200")
    return _M.ALLOWED
  elseif status == 404 then
    metrics.inc("edge_domain_check_requests_total", "result", "404")
    return _M.DENIED
  end
  metrics.inc("edge_domain_check_requests_total", "result", "unexpected")
  ngx.log(ngx.WARN, "edge: domain check for ", domain, " answered HTTP ", status, " (refused until retry)")
  return _M.ERROR
end

-- Forgets the cached verdict of a name (the next verdict asks the endpoint).
function _M.forget(self, domain)
  ngx.shared[self.dict_name]:delete(cache_key(domain))
end

-- The cached verdict of a normalised name, or nil: no request, nothing counted.
function _M.cached_verdict(self, domain)
  return ngx.shared[self.dict_name]:get(cache_key(domain))
end

-- Whether the denial of a name is yet to be logged in this deny window: true once per deny TTL
-- per name (per instance), and from then on false until the window ends. A log line for each
-- handshake of a denied name would let any client fill the log.
function _M.denial_log_due(self, domain)
  return (ngx.shared[self.dict_name]:add("denial-logged:" .. domain, true, self.ttl[_M.DENIED])) == true
end

-- Returns ALLOWED, DENIED or ERROR for a normalised name, from the cache when it can.
function _M.verdict(self, domain)
  local cache = ngx.shared[self.dict_name]
  local cached = cache:get(cache_key(domain))
  if cached then
    metrics.inc("edge_domain_check_cache_total", "result", "hit")
    return cached
  end
  metrics.inc("edge_domain_check_cache_total", "result", "miss")

  -- One request per name at a time; the others wait for its verdict.
  local wait = self.timeout / 1000 + 1
  local locked = shm_lock.acquire(cache, "check:" .. domain, wait, wait)
  if locked then
    cached = cache:get(cache_key(domain))
    if cached then
      shm_lock.release(cache, "check:" .. domain)
      return cached
    end
  end

  local verdict = self:request(domain)
  cache:set(cache_key(domain), verdict, self.ttl[verdict])
  if locked then
    shm_lock.release(cache, "check:" .. domain)
  end
  return verdict
end

return _M
