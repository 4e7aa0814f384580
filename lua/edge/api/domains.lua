-- The domains API, for the product (docs/domains-api.yaml describes it):
--   PUT    /v1/domains/{name}   register: validated like a handshake's name, queued for issuance
--                               (the domain check is still asked); 202 with the status
--   GET    /v1/domains/{name}   the status
--   DELETE /v1/domains/{name}   the certificate, queue entry and marks removed from the store;
--                               every pod stops serving it within the handshake cache's bound
--   GET    /v1/domains?state=&cursor=&limit=   names in a state, paged
-- Every call carries "Authorization: Bearer <token>", compared in constant time. A refused call
-- writes nothing.
local bit = require "bit"
local cjson = require "cjson.safe"
local crypto = require "edge.acme.crypto"
local hostname = require "edge.hostname"
local metrics = require "edge.metrics"
local cert_changes = require "edge.store.cert_changes"
local domain_status = require "edge.store.domain_status"

local _M = {}
local mt = { __index = _M }

local LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 100, 1000
-- After a DELETE, the name's order mark says so for longer than an order already running may
-- take (the renewer sets a name aside for 300 s): the store refuses its certificate meanwhile.
local DELETED_MARK, DELETED_MARK_SECONDS = "deleted", 300

local function order_mark(name)
  return "edge:order:" .. name
end
-- States a listing can ask for: the stored ones, and those of stored certificates.
local LISTABLE = { issued = true, expired = true }
for _, state in ipairs(domain_status.STATES) do
  LISTABLE[state] = true
end

-- opts: token (the expected bearer token; empty or nil: every call is refused), adapter
-- (edge.redis_storage), edge_hostnames (list), profile, dns_precheck (optional).
function _M.new(opts)
  local edge_hostnames = {}
  for _, name in ipairs(opts.edge_hostnames or {}) do
    edge_hostnames[name] = true
  end
  return setmetatable({
    token_digest = opts.token and opts.token ~= "" and crypto.sha256(opts.token) or nil,
    adapter = opts.adapter,
    edge_hostnames = edge_hostnames,
    profile = opts.profile,
    dns_precheck = opts.dns_precheck,
  }, mt)
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  metrics.inc("edge_domains_api_requests_total", "status", tostring(status))
  -- A string is a body already encoded.
  ngx.say(type(body) == "string" and body or cjson.encode(body))
  return ngx.exit(status)
end

local function problem(status, message, extra)
  local body = { error = message }
  for k, v in pairs(extra or {}) do
    body[k] = v
  end
  return reply(status, body)
end

-- Equal digests, compared without an early exit (the time does not depend on where they differ).
local function same_digest(a, b)
  if #a ~= #b then
    return false
  end
  local diff = 0
  for i = 1, #a do
    diff = bit.bor(diff, bit.bxor(a:byte(i), b:byte(i)))
  end
  return diff == 0
end

local function authorized(self)
  if not self.token_digest then
    return false
  end
  local header = ngx.var.http_authorization or ""
  local token = header:match("^[Bb]earer%s+(%S+)%s*$")
  return token ~= nil and same_digest(crypto.sha256(token), self.token_digest)
end

local function rfc3339(t)
  t = tonumber(t)
  return t and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) or cjson.null
end

local function or_null(v)
  if v == nil or v == "" then
    return cjson.null
  end
  return v
end

-- The name from the path (ngx.var.uri: already percent-decoded, so never decoded again: a
-- "%" in it is refused), normalised, or nil and a refusal already sent.
local function domain_of(self, raw)
  local name, why = hostname.normalize(raw)
  if not name then
    return nil, problem(400, "not a valid domain name", { reason = why })
  end
  if self.edge_hostnames[name] then
    return nil, problem(409, "one of the edge's own host names: never issued for", { name = name })
  end
  return name
end

local function store_failed(err)
  ngx.log(ngx.WARN, "edge: domains API: the store failed: ", err)
  return problem(503, "the certificate store is unavailable: retry the call (every call is idempotent)")
end

-- The status of a name, or nil (unknown) / nil, err (the store failed).
function _M.status(self, name)
  local adapter = self.adapter
  local status, err = domain_status.get(adapter, name)
  if not status then
    return nil, err
  end
  local cert
  cert, err = adapter:get(name .. ":latest")
  if err then
    return nil, err
  end
  local renewal
  renewal, err = adapter:with_connection(function(connection)
    return connection:command("HGETALL", adapter:prefixed(cert_changes.state_key(name)))
  end)
  if not renewal then
    return nil, err
  end
  local r = {}
  for i = 1, #renewal, 2 do
    r[renewal[i]] = renewal[i + 1]
  end
  if not cert and not status.state then
    return nil
  end

  ngx.update_time()
  local state = status.state
  local reason = status.reason
  if cert then
    local not_after = tonumber(r.not_after)
    if r.not_allowed then
      state, reason = "not_allowed", "the domain check no longer allows this name: not renewed, removed once it expires"
    elseif not_after and not_after <= ngx.now() then
      state = "expired"
    else
      state = "issued"
    end
  end
  local dns = cjson.null
  if self.dns_precheck and state ~= "issued" then
    local verdict, detail = self.dns_precheck:check(name)
    dns = { status = verdict, detail = detail }
  elseif status.dns then
    dns = { status = "not_pointing", detail = status.dns }
  end
  return {
    name = name,
    state = state,
    reason = or_null(reason),
    notAfter = rfc3339(r.not_after),
    renewAt = rfc3339(r.ari_point or r.renew_at),
    profile = or_null(self.profile),
    lastError = or_null(status.last_error or r.last_error),
    nextAttemptAt = rfc3339(status.next_attempt_at or r.next_attempt),
    dns = dns,
  }
end

local function register(self, name)
  local adapter = self.adapter
  local current, err = self:status(name)
  if err then
    return store_failed(err)
  end
  -- Registered again after a DELETE: the mark that kept orders off goes.
  local mark
  mark, err = adapter:get(order_mark(name))
  if err then
    return store_failed(err)
  end
  if mark == DELETED_MARK then
    local deleted
    deleted, err = adapter:delete(order_mark(name))
    if not deleted then
      return store_failed(err)
    end
  end
  ngx.update_time()
  local now = string.format("%.3f", ngx.now())
  local ok
  ok, err = domain_status.set_once(adapter, name, "registered_at", now)
  if ok then
    ok, err = domain_status.set_once(adapter, name, "first_seen_at", now)
  end
  if ok and not (current and (current.state == "issued" or current.state == "queued" or current.state == "issuing")) then
    -- A fresh attempt: what the last one was waiting for no longer applies (its error stays).
    ok, err = domain_status.set(adapter, name, "queued", { reason = false, next_attempt_at = false, dns = false, dns_attempts = false })
    if ok then
      ok, err = domain_status.enqueue(adapter, name)
    end
  end
  if not ok then
    return store_failed(err)
  end
  current, err = self:status(name)
  if not current then
    return store_failed(err or "the status vanished")
  end
  return reply(202, current)
end

local function remove(self, name)
  local adapter = self.adapter
  local ok, err = domain_status.forget(adapter, name)
  if not ok then
    return store_failed(err)
  end
  -- First the mark, then the certificate: no new order is placed for the name meanwhile, and
  -- an order already running (a renewal, a registration) cannot store its certificate.
  ok, err = adapter:set(order_mark(name), DELETED_MARK, { exptime = DELETED_MARK_SECONDS })
  if not ok then
    return store_failed(err)
  end
  local had_cert
  had_cert, err = adapter:delete(name .. ":latest")
  if had_cert == nil then
    return store_failed(err)
  end
  return reply(200, { name = name, deleted = true, certificate = had_cert == 1 })
end

local function list(self)
  local args = ngx.req.get_uri_args(10)
  local state = args.state
  if type(state) ~= "string" or not LISTABLE[state] then
    return problem(400, "state must be one of the states", { parameter = "state" })
  end
  local limit = args.limit == nil and LIST_LIMIT_DEFAULT
    or type(args.limit) == "string" and args.limit:match("^%d+$") and tonumber(args.limit) or nil
  if not limit or limit < 1 or limit > LIST_LIMIT_MAX or limit % 1 ~= 0 then
    return problem(400, "limit must be a whole number from 1 to " .. LIST_LIMIT_MAX, { parameter = "limit" })
  end
  local cursor = type(args.cursor) == "string" and args.cursor or ""
  local names, next_cursor, err
  local not_after = {}
  if state == "issued" or state == "expired" then
    -- From the certificate index by expiry; the cursor is an offset.
    local offset = tonumber(cursor ~= "" and cursor or "0")
    if not offset or offset < 0 or offset % 1 ~= 0 then
      return problem(400, "not a cursor of this listing", { parameter = "cursor" })
    end
    ngx.update_time()
    local now = string.format("%.0f", ngx.now())
    local adapter = self.adapter
    names, err = adapter:with_connection(function(connection)
      local low, high = state == "issued" and "(" .. now or "-inf", state == "issued" and "+inf" or now
      local reply, command_err = connection:command("ZRANGEBYSCORE", adapter:prefixed(cert_changes.INDEX.expiry), low, high,
        "WITHSCORES", "LIMIT", offset, limit + 1)
      if not reply then
        return nil, command_err
      end
      local found = {}
      for i = 1, #reply, 2 do
        found[#found + 1] = reply[i]
        not_after[reply[i]] = reply[i + 1]
      end
      return found
    end)
    if names then
      next_cursor = ""
      if #names > limit then
        names[#names] = nil
        next_cursor = tostring(offset + limit)
      end
    end
  else
    names, next_cursor = domain_status.list(self.adapter, state, cursor, limit)
    if not names then
      err = next_cursor
    end
  end
  if not names then
    return store_failed(err)
  end
  if #names == 0 then
    -- Written out: a lua-cjson without array_mt (Debian's 2.1.0) encodes an empty table as {}.
    return reply(200, '{"domains":[],"nextCursor":null}')
  end
  local domains = {}
  for i, name in ipairs(names) do
    domains[i] = { name = name, state = state, notAfter = not_after[name] and rfc3339(not_after[name]) or nil }
  end
  return reply(200, { domains = setmetatable(domains, cjson.array_mt), nextCursor = next_cursor ~= "" and next_cursor or cjson.null })
end

-- The content handler of the API's location.
function _M.handle(self)
  if not authorized(self) then
    ngx.header["WWW-Authenticate"] = 'Bearer realm="edge domains API"'
    return problem(401, "a valid bearer token is required")
  end
  local method = ngx.req.get_method()
  local uri = ngx.var.uri
  if uri == "/v1/domains" then
    if method ~= "GET" then
      ngx.header["Allow"] = "GET"
      return problem(405, "method not allowed")
    end
    return list(self)
  end
  local raw = uri:match("^/v1/domains/([^/]+)$")
  if not raw then
    return problem(404, "no such resource")
  end
  if method ~= "GET" and method ~= "PUT" and method ~= "DELETE" then
    ngx.header["Allow"] = "GET, PUT, DELETE"
    return problem(405, "method not allowed")
  end
  local name = domain_of(self, raw)
  if not name then
    return
  end
  if method == "PUT" then
    return register(self, name)
  elseif method == "DELETE" then
    return remove(self, name)
  end
  local status, err = self:status(name)
  if err then
    return store_failed(err)
  end
  if not status then
    return problem(404, "unknown domain", { name = name })
  end
  return reply(200, status)
end

return _M
