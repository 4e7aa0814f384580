-- An ACME (RFC 8555) client on nginx cosockets: account registration, and an order for a set
-- of names validated by http-01, finalised with a new certificate key, the chain downloaded.
-- No process is started; crypto is edge.acme.crypto (FFI to OpenSSL). Every network call is
-- bounded by the client's timeout and, within an order, by the order's deadline.
--
--   local c = require("edge.acme.client").new({ directory_url = ..., account_key = <key>,
--     account_url = <kid or nil>, contact = "mailto:...", timeout = 5000,
--     challenges = { put = function(token, key_authorization, name) end, remove = function(token, name) end } })
--   c:register()            -> account_url | nil, err, problem
--   c:order(names, opts)    -> { fullchain_pem, privkey_pem, cert_pem, expiry } | nil, err, problem
--   c:directory()           -> the directory table | nil, err, problem
--
-- problem = { type, detail, status, retry_after (s), subproblems }: the server's problem
-- document (RFC 7807), for the caller to decide what to do (rateLimited, accountDoesNotExist...).
local cjson = require "cjson.safe"
local crypto = require "edge.acme.crypto"
local http = require "edge.http_get"

local _M = {}
local mt = { __index = _M }

local DEFAULT_TIMEOUT = 5000
local DEFAULT_ORDER_SECONDS = 60
local BAD_NONCE_RETRIES = 5
local NONCE_POOL_MAX = 32
local POLL_FIRST = 0.05
local POLL_MAX = 1
local ERROR_PREFIX = "urn:ietf:params:acme:error:"
local TIMED_OUT = "order timed out"

-- Nonces are per server, kept per worker: every response's Replay-Nonce is put here, and a
-- request takes one, so an issuance rarely needs a newNonce round trip.
local nonce_pools = {}

local function pool_for(url)
  local pool = nonce_pools[url]
  if not pool then
    pool = {}
    nonce_pools[url] = pool
  end
  return pool
end

local function now()
  ngx.update_time()
  return ngx.now()
end

local function json_list(t)
  return setmetatable(t, cjson.array_mt)
end

-- Retry-After: delay-seconds or an HTTP date (RFC 9110 10.2.3); seconds from now, or nil.
local function parse_retry_after(value)
  if not value or value == "" then
    return nil
  end
  local seconds = tonumber(value)
  if seconds then
    return math.max(0, seconds)
  end
  local at = ngx.parse_http_time(value)
  if at then
    return math.max(0, at - ngx.time())
  end
  return nil
end

_M.parse_retry_after = parse_retry_after

local function short_type(t)
  if type(t) == "string" and t:sub(1, #ERROR_PREFIX) == ERROR_PREFIX then
    return t:sub(#ERROR_PREFIX + 1)
  end
  return tostring(t)
end

local function problem_of(res)
  local doc = cjson.decode(res.body or "")
  if type(doc) ~= "table" then
    doc = {}
  end
  return {
    type = type(doc.type) == "string" and doc.type or "about:blank",
    detail = type(doc.detail) == "string" and doc.detail or nil,
    status = res.status,
    retry_after = parse_retry_after(res.headers["retry-after"]),
    subproblems = type(doc.subproblems) == "table" and doc.subproblems or nil,
  }
end

-- A problem embedded in a resource (an authorization's challenge error, an order's error).
local function embedded_problem(err, res)
  return {
    type = type(err) == "table" and type(err.type) == "string" and err.type or "about:blank",
    detail = type(err) == "table" and type(err.detail) == "string" and err.detail or nil,
    status = type(err) == "table" and tonumber(err.status) or (res and res.status) or nil,
    retry_after = res and parse_retry_after(res.headers["retry-after"]) or nil,
    subproblems = type(err) == "table" and type(err.subproblems) == "table" and err.subproblems or nil,
  }
end

local function describe(what, problem)
  return what .. ": HTTP " .. tostring(problem.status) .. " " .. short_type(problem.type)
    .. (problem.detail and (": " .. problem.detail) or "")
end

function _M.new(opts)
  assert(type(opts) == "table", "acme client: options are required")
  assert(type(opts.directory_url) == "string", "acme client: directory_url is required")
  assert(opts.account_key, "acme client: account_key is required")
  local self = {
    directory_url = opts.directory_url,
    timeout = opts.timeout or DEFAULT_TIMEOUT,
    contact = opts.contact,
    account_key = opts.account_key,
    account_url = opts.account_url,
    challenges = opts.challenges,
    ssl_verify = opts.ssl_verify ~= false,
    -- Counters, for tests and metrics: requests sent, of them on new (not pooled) connections,
    -- badNonce retries, newNonce calls.
    stats = { requests = 0, new_connections = 0, bad_nonce_retries = 0, new_nonce = 0 },
  }
  local thumbprint, err = crypto.jwk_thumbprint(opts.account_key)
  assert(thumbprint, "acme client: account_key is not a usable key: " .. tostring(err))
  self.thumbprint = thumbprint
  return setmetatable(self, mt)
end

-- One HTTP exchange, bounded by the client timeout and the deadline (if any). Keeps the
-- Replay-Nonce of every response.
function _M._http(self, method, url, headers, body, deadline)
  local timeout, cut = self.timeout, false
  if deadline then
    local left = (deadline - now()) * 1000
    if left <= 0 then
      return nil, TIMED_OUT
    end
    local limit = math.max(1, math.floor(left))
    if limit < timeout then
      timeout, cut = limit, true
    end
  end
  self.stats.requests = self.stats.requests + 1
  local res, err = http.request(method, url, {
    headers = headers, body = body, timeout = timeout, ssl_verify = self.ssl_verify,
  })
  if not res then
    -- A timeout cut to what was left of the deadline is the deadline's, even when the socket's
    -- timer (whole milliseconds, rounded down) fires just before ngx.now() reaches it.
    if deadline and (now() >= deadline or (cut and tostring(err):find("timeout", 1, true))) then
      return nil, TIMED_OUT .. " (" .. method .. " " .. url .. ": " .. tostring(err) .. ")"
    end
    return nil, method .. " " .. url .. ": " .. tostring(err)
  end
  if not res.reused then
    self.stats.new_connections = self.stats.new_connections + 1
  end
  local nonce = res.headers["replay-nonce"]
  if nonce then
    local pool = pool_for(self.directory_url)
    if #pool < NONCE_POOL_MAX then
      pool[#pool + 1] = nonce
    end
  end
  return res
end

-- The directory, fetched once per client (again after a failure).
function _M.directory(self, deadline)
  if self.dir then
    return self.dir
  end
  local res, err = self:_http("GET", self.directory_url, { Accept = "application/json" }, nil, deadline)
  if not res then
    return nil, "directory: " .. err
  end
  if res.status ~= 200 then
    local problem = problem_of(res)
    return nil, describe("directory", problem), problem
  end
  local dir = cjson.decode(res.body)
  if type(dir) ~= "table" or type(dir.newNonce) ~= "string" or type(dir.newAccount) ~= "string"
    or type(dir.newOrder) ~= "string" then
    return nil, "directory: not an ACME directory at " .. self.directory_url
  end
  self.dir = dir
  return dir
end

function _M._nonce(self, deadline)
  local pool = pool_for(self.directory_url)
  local nonce = table.remove(pool)
  if nonce then
    return nonce
  end
  local dir, err, problem = self:directory(deadline)
  if not dir then
    return nil, err, problem
  end
  self.stats.new_nonce = self.stats.new_nonce + 1
  local res, http_err = self:_http("HEAD", dir.newNonce, nil, nil, deadline)
  if not res then
    self.dir = nil
    return nil, "newNonce: " .. http_err
  end
  nonce = res.headers["replay-nonce"]
  if not nonce then
    return nil, "newNonce: HTTP " .. res.status .. " without a Replay-Nonce"
  end
  -- _http pooled it; take it back out.
  for i = #pool, 1, -1 do
    if pool[i] == nonce then
      table.remove(pool, i)
      break
    end
  end
  return nonce
end

-- A JWS-signed POST (flattened JSON serialisation). payload nil = POST-as-GET. use_jwk: sign
-- with the public key in the header (newAccount) instead of the account URL (kid).
-- Returns res (any status below 400) | nil, err, problem.
function _M._post(self, what, url, payload, deadline, opts)
  opts = opts or {}
  local key = self.account_key
  local payload64 = payload == nil and "" or crypto.base64url(cjson.encode(payload))
  for attempt = 0, BAD_NONCE_RETRIES do
    local nonce, nonce_err, nonce_problem = self:_nonce(deadline)
    if not nonce then
      return nil, nonce_err, nonce_problem
    end
    local protected = { alg = crypto.jws_alg(key), nonce = nonce, url = url }
    if opts.use_jwk or not self.account_url then
      protected.jwk = crypto.jwk(key)
    else
      protected.kid = self.account_url
    end
    local protected64 = crypto.base64url(cjson.encode(protected))
    local raw_signature, sign_err = crypto.sign(key, protected64 .. "." .. payload64)
    if not raw_signature then
      return nil, what .. ": signing failed: " .. tostring(sign_err)
    end
    local signature = crypto.base64url(raw_signature)
    local body = cjson.encode({ protected = protected64, payload = payload64, signature = signature })
    local res, err = self:_http("POST", url, {
      ["Content-Type"] = "application/jose+json",
      Accept = opts.accept or "application/json",
    }, body, deadline)
    if not res then
      self.dir = nil -- fetched again on the next call, in case the server moved
      return nil, what .. ": " .. err
    end
    if res.status < 400 then
      return res
    end
    local problem = problem_of(res)
    if problem.type ~= ERROR_PREFIX .. "badNonce" or attempt == BAD_NONCE_RETRIES then
      return nil, describe(what, problem), problem
    end
    -- The error response carried a fresh nonce (pooled by _http): try again with it.
    self.stats.bad_nonce_retries = self.stats.bad_nonce_retries + 1
  end
end

local function decode(what, res)
  local doc = cjson.decode(res.body or "")
  if type(doc) ~= "table" then
    return nil, what .. ": HTTP " .. res.status .. " with a body that is not JSON"
  end
  return doc
end

-- newAccount with termsOfServiceAgreed: creates the account for this key, or finds the one the
-- server has (200 instead of 201). Sets and returns the account URL.
function _M.register(self, deadline)
  deadline = deadline or (now() + DEFAULT_ORDER_SECONDS)
  local dir, err, problem = self:directory(deadline)
  if not dir then
    return nil, err, problem
  end
  local payload = { termsOfServiceAgreed = true }
  if self.contact then
    payload.contact = json_list({ self.contact })
  end
  local res
  res, err, problem = self:_post("newAccount", dir.newAccount, payload, deadline, { use_jwk = true })
  if not res then
    return nil, err, problem
  end
  local location = res.headers["location"]
  if not location then
    return nil, "newAccount: HTTP " .. res.status .. " without a Location"
  end
  self.account_url = location
  ngx.log(ngx.INFO, "acme: ", res.status == 201 and "registered new account " or "found existing account ",
    location, " at ", self.directory_url)
  return location
end

-- Sleeps until the next poll: Retry-After when the server gave one, else the backoff, cut
-- short so one last poll still fits before the deadline. Returns false (at once, without
-- sleeping) when the server's Retry-After or the time left rule out another poll.
local LAST_POLL_MARGIN = 0.05
local function wait(delay, res, deadline)
  local retry_after = parse_retry_after(res.headers["retry-after"])
  local left = deadline - now()
  local pause
  if retry_after then
    if retry_after >= left then
      return false, retry_after
    end
    pause = math.max(retry_after, 0.01)
  else
    pause = math.min(delay, left - LAST_POLL_MARGIN)
    if pause <= 0 then
      return false
    end
  end
  ngx.sleep(pause)
  return true
end

-- Polls a resource (POST-as-GET) until done(doc) is true. Returns doc, res | nil, err, problem.
function _M._poll(self, what, url, deadline, done)
  local delay = POLL_FIRST
  while true do
    local res, err, problem = self:_post(what, url, nil, deadline)
    if not res then
      return nil, err, problem
    end
    local doc, decode_err = decode(what, res)
    if not doc then
      return nil, decode_err
    end
    if done(doc) then
      return doc, res
    end
    local ok, retry_after = wait(delay, res, deadline)
    if not ok then
      return nil, TIMED_OUT .. " (" .. what .. " still " .. tostring(doc.status)
        .. (retry_after and (", server asked to retry after " .. retry_after .. " s") or "") .. ")"
    end
    delay = math.min(delay * 2, POLL_MAX)
  end
end

local function challenge_failure(authz, res)
  local name = type(authz.identifier) == "table" and authz.identifier.value or "?"
  for _, ch in ipairs(authz.challenges or {}) do
    if ch.error then
      local problem = embedded_problem(ch.error, res)
      return "authorization for " .. name .. " is " .. tostring(authz.status) .. ": " .. short_type(problem.type)
        .. (problem.detail and (": " .. problem.detail) or ""), problem
    end
  end
  return "authorization for " .. name .. " is " .. tostring(authz.status),
    { type = ERROR_PREFIX .. "unauthorized", detail = "authorization " .. tostring(authz.status), status = res and res.status }
end

-- Everything after newOrder. tokens collects what was written with challenges.put.
function _M._complete(self, order_url, order, names, cert_key, deadline, tokens)
  -- 1. Every pending authorization: write the key authorization, then tell the server to look.
  local pending = {}
  for _, authz_url in ipairs(order.authorizations or {}) do
    local res, err, problem = self:_post("authorization", authz_url, nil, deadline)
    if not res then
      return nil, err, problem
    end
    local authz, decode_err = decode("authorization", res)
    if not authz then
      return nil, decode_err
    end
    if authz.status == "pending" then
      local challenge
      for _, ch in ipairs(authz.challenges or {}) do
        if ch.type == "http-01" then
          challenge = ch
        end
      end
      local name = type(authz.identifier) == "table" and authz.identifier.value or "?"
      if not challenge or type(challenge.token) ~= "string" or not challenge.token:match("^[%w_-]+$") then
        return nil, "authorization for " .. name .. " offers no usable http-01 challenge",
          { type = ERROR_PREFIX .. "rejectedIdentifier", detail = "no http-01 challenge", status = res.status }
      end
      local ok, put_err = self.challenges.put(challenge.token, challenge.token .. "." .. self.thumbprint, name)
      if not ok then
        return nil, "storing the http-01 challenge for " .. name .. " failed: " .. tostring(put_err)
      end
      tokens[#tokens + 1] = { token = challenge.token, name = name }
      local _
      _, err, problem = self:_post("challenge", challenge.url, {}, deadline)
      if err then
        return nil, err, problem
      end
      pending[#pending + 1] = authz_url
    elseif authz.status ~= "valid" then
      local msg, problem = challenge_failure(authz, res)
      return nil, msg, problem
    end
  end

  -- 2. Wait for each to be decided.
  for _, authz_url in ipairs(pending) do
    local authz, res_or_err, problem = self:_poll("authorization", authz_url, deadline, function(doc)
      return doc.status ~= "pending" and doc.status ~= "processing"
    end)
    if not authz then
      return nil, res_or_err, problem
    end
    if authz.status ~= "valid" then
      local msg, p = challenge_failure(authz, res_or_err)
      return nil, msg, p
    end
  end

  -- 3. The order is ready once every authorization is valid (wait if the server lags).
  local err, problem
  if order.status ~= "ready" and order.status ~= "valid" then
    order, err, problem = self:_poll("order", order_url, deadline, function(doc)
      return doc.status ~= "pending"
    end)
    if not order then
      return nil, err, problem
    end
  end
  if order.status == "invalid" then
    local p = embedded_problem(order.error)
    return nil, "order is invalid: " .. short_type(p.type) .. (p.detail and (": " .. p.detail) or ""), p
  end

  -- 4. Finalize with a CSR for the new key.
  if order.status == "ready" then
    local csr, csr_err = crypto.csr(cert_key, names)
    if not csr then
      return nil, "CSR: " .. tostring(csr_err)
    end
    local res
    res, err, problem = self:_post("finalize", order.finalize, { csr = crypto.base64url(csr) }, deadline)
    if not res then
      return nil, err, problem
    end
    order = decode("finalize", res) or {}
    -- The finalize response is the first look at the order: while it is processing, wait (its
    -- Retry-After, else the first backoff step) before asking again, rather than at once (RFC
    -- 8555 7.4). Asking at once also lands in the middle of pebble's issuance, where its order
    -- handler read-locks the order twice and the CA's write lock coming in between deadlocks
    -- that order for good (a Go RWMutex must not be read-locked recursively).
    if order.status ~= "valid" and not wait(POLL_FIRST, res, deadline) then
      return nil, TIMED_OUT .. " (order still " .. tostring(order.status) .. " after finalize)"
    end
  end
  if order.status ~= "valid" then
    order, err, problem = self:_poll("order", order_url, deadline, function(doc)
      return doc.status ~= "processing" and doc.status ~= "ready"
    end)
    if not order then
      return nil, err, problem
    end
  end
  if order.status ~= "valid" or type(order.certificate) ~= "string" then
    local p = embedded_problem(order.error)
    return nil, "order is " .. tostring(order.status) .. " after finalize"
      .. (order.error and (": " .. short_type(p.type) .. (p.detail and (": " .. p.detail) or "")) or ""), p
  end

  -- 5. The certificate chain.
  local res
  res, err, problem = self:_post("certificate", order.certificate, nil, deadline,
    { accept = "application/pem-certificate-chain" })
  if not res then
    return nil, err, problem
  end
  local fullchain = res.body or ""
  local cert_pem = fullchain:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-")
  if not cert_pem then
    return nil, "certificate: HTTP " .. res.status .. " without a PEM certificate"
  end
  cert_pem = cert_pem .. "\n"
  local expiry, expiry_err = crypto.cert_not_after(cert_pem)
  if not expiry then
    return nil, "certificate: cannot read its expiry: " .. tostring(expiry_err)
  end
  local privkey_pem, pem_err = crypto.key_to_pem(cert_key)
  if not privkey_pem then
    return nil, "certificate key: " .. tostring(pem_err)
  end
  return {
    fullchain_pem = fullchain,
    privkey_pem = privkey_pem,
    cert_pem = cert_pem,
    expiry = expiry,
  }
end

-- names: the identifiers (DNS names), the first one also the CSR's subject.
-- opts: key_type ("ec-p256" default, "ec-p384", "rsa-2048"), deadline (ngx.now() seconds;
-- default 60 s from now), profile, replaces (ARI certificate id).
function _M.order(self, names, opts)
  opts = opts or {}
  local started = now()
  local deadline = opts.deadline or (started + DEFAULT_ORDER_SECONDS)
  assert(type(names) == "table" and #names > 0, "acme order: names are required")
  assert(self.challenges and self.challenges.put and self.challenges.remove, "acme order: challenges.put/remove are required")
  local label = table.concat(names, ",")

  local function fail(err, problem)
    -- Every failure by the deadline starts with "order timed out", also one that came mid-exchange
    -- ("<step>: order timed out (<request>)" from _post).
    local step, rest = err:match("^(%w+): " .. TIMED_OUT .. "(.*)$")
    if step then
      local inner = rest:match("^ %((.*)%)$")
      err = TIMED_OUT .. " (" .. step .. (inner and (": " .. inner) or "") .. ")"
    elseif now() >= deadline and not err:find(TIMED_OUT, 1, true) then
      err = TIMED_OUT .. " (" .. err .. ")"
    end
    ngx.log(ngx.WARN, "acme: order for ", label, " failed after ",
      string.format("%.3f", now() - started), " s: ", err)
    return nil, err, problem
  end

  -- A new key for the certificate, made first: a bad key_type costs no order.
  local key_type = opts.key_type or "ec-p256"
  local cert_key, key_err = crypto.generate_key(key_type)
  if not cert_key then
    return fail("certificate key (" .. key_type .. "): " .. tostring(key_err))
  end

  local dir, err, problem = self:directory(deadline)
  if not dir then
    return fail(err, problem)
  end
  if not self.account_url then
    local _
    _, err, problem = self:register(deadline)
    if err then
      return fail(err, problem)
    end
  end

  local identifiers = {}
  for i, name in ipairs(names) do
    identifiers[i] = { type = "dns", value = name }
  end
  local payload = { identifiers = json_list(identifiers) }
  if opts.profile and type(dir.meta) == "table" and type(dir.meta.profiles) == "table"
    and dir.meta.profiles[opts.profile] ~= nil then
    payload.profile = opts.profile
  end
  if opts.replaces and dir.renewalInfo then
    payload.replaces = opts.replaces
  end
  local res
  res, err, problem = self:_post("newOrder", dir.newOrder, payload, deadline)
  if not res then
    return fail(err, problem)
  end
  local order_url = res.headers["location"]
  local order, decode_err = decode("newOrder", res)
  if not order or not order_url then
    return fail(decode_err or "newOrder: no Location")
  end

  local tokens = {}
  local ok, result, complete_err, complete_problem = pcall(self._complete, self, order_url, order, names, cert_key, deadline, tokens)
  for _, written in ipairs(tokens) do
    local removed, remove_err = pcall(self.challenges.remove, written.token, written.name)
    if not removed then
      ngx.log(ngx.WARN, "acme: removing the http-01 challenge ", written.token, " failed: ", tostring(remove_err))
    end
  end
  if not ok then
    return fail("order: " .. tostring(result))
  end
  if not result then
    return fail(complete_err, complete_problem)
  end
  ngx.log(ngx.INFO, "acme: issued a certificate for ", label, " (", key_type, ") in ",
    string.format("%.3f", now() - started), " s")
  return result
end

return _M
