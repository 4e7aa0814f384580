-- lua-resty-auto-ssl's certificate provider, in place of its dehydrated one: registered as
-- "resty.auto-ssl.ssl_providers.lets_encrypt" before auto-ssl loads (auto-ssl 0.13.1 requires
-- that module by name in its handshake and renewal code and has no option for another).
-- issue_cert(auto_ssl, domain) orders the certificate with our ACME client (edge.acme.client,
-- cosockets, no process started), stores it, and returns it; auto-ssl keeps its handshake flow,
-- its locks, storage, allow_domain and challenge server.
--   * The account is the environment's (edge.acme.account), loaded once per worker.
--   * Orders run concurrently on cosockets, at most `max_concurrent_orders` per worker; the
--     excess waits for a slot (queued) until the order deadline.
--   * accountDoesNotExist: a new account is registered once (cluster-wide) and the order retried.
--   * rateLimited: the name is cooled off for the CA's Retry-After; when the limit is the
--     account's, every order of the environment waits that long (a mark in the store).
local semaphore = require "ngx.semaphore"
local acme_client = require "edge.acme.client"
local account_store = require "edge.acme.account"
local renewal_info = require "edge.acme.renewal_info"
local domain_status = require "edge.store.domain_status"
local redis_storage = require "edge.redis_storage"
local metrics = require "edge.metrics"

local _M = {}

local ACCOUNT_COOLOFF_KEY = "edge:acme-account:cooloff"
local ERROR = "urn:ietf:params:acme:error:"
local CHALLENGE_TTL = 3600

local options -- from configure()
local slots -- per worker: ngx.semaphore of concurrent orders
local account -- per worker: the environment's account, once loaded
local order_client -- per worker: the ACME client of that account

-- opts: directory_url, contact, key_type ("ec-p256"|"ec-p384"|"rsa-2048"), timeout (ms per
-- network call), order_timeout (s), max_concurrent_orders (per worker), profile (optional).
function _M.configure(opts)
  -- A new configuration starts from nothing (the client and account are per directory).
  order_client, account = nil, nil
  options = {
    directory_url = assert(opts.directory_url, "edge: acme.directory_url is required"),
    contact = opts.contact,
    key_type = opts.key_type or "ec-p256",
    timeout = opts.timeout or 5000,
    order_timeout = opts.order_timeout or 30,
    max_concurrent_orders = opts.max_concurrent_orders or 10,
    profile = opts.profile,
  }
end

-- An ACME client for the account; storage (auto-ssl's) receives the http-01 answers, so that
-- whichever pod the CA reaches answers them (auto-ssl's challenge server reads
-- "<domain>:challenge:<token>"). Without storage, the client can only register.
local function client_for(key, url, storage)
  return acme_client.new({
    directory_url = options.directory_url,
    timeout = options.timeout,
    contact = options.contact,
    account_key = key,
    account_url = url,
    challenges = storage and {
      -- The key auto-ssl's set_challenge writes, with an expiry, so a pod that dies mid-order
      -- leaves nothing behind for long.
      put = function(token, key_authorization, domain)
        return storage.adapter:set(domain .. ":challenge:" .. token, key_authorization, { exptime = CHALLENGE_TTL })
      end,
      remove = function(token, domain)
        return storage:delete_challenge(domain, token)
      end,
    },
  })
end

-- This worker's client of the environment's account (its directory and nonces are reused).
local function client_of(loaded, storage)
  if not order_client or order_client.account_url ~= loaded.url then
    order_client = client_for(loaded.key, loaded.url, storage)
  end
  return order_client
end

-- A client that only registers (no challenges to answer).
local function registering_client(key)
  return client_for(key, nil, nil)
end

local function load_account(adapter)
  if account then
    return account
  end
  local loaded, err = account_store.load(adapter, registering_client)
  if loaded then
    account = loaded
  end
  return loaded, err
end

-- Makes sure this worker has the environment's account before an order (allow_domain calls
-- it, as account:ensure(adapter), before it lets an order happen). Returns true, or nil and an error.
function _M.ensure(_, adapter)
  local loaded, err = load_account(adapter)
  return loaded ~= nil, err
end

local function is(problem, kind)
  return problem and problem.type == ERROR .. kind
end

-- A rate limit on the account (new orders per account), rather than on the name.
local function account_limit(problem)
  local detail = (problem.detail or ""):lower()
  return not (detail:find("registered domain", 1, true) or detail:find("exact set", 1, true)
    or detail:find("identifier", 1, true))
end

local function order(storage, domain, deadline, replaces)
  local loaded, err = load_account(storage.adapter)
  if not loaded then
    return nil, err
  end
  local order_options = { key_type = options.key_type, deadline = deadline, profile = options.profile, replaces = replaces }
  local cert, problem
  cert, err, problem = client_of(loaded, storage):order({ domain }, order_options)
  if is(problem, "accountDoesNotExist") then
    local replaced
    replaced, err = account_store.replace(storage.adapter, loaded, registering_client)
    if not replaced then
      return nil, err
    end
    account = replaced
    cert, err, problem = client_of(replaced, storage):order({ domain }, order_options)
  end
  return cert, err, problem
end

-- Per worker: a client for the directory and ARI only. renewalInfo is not authenticated, so
-- asking it needs no account (loading one would register it with a CA that forgot it).
local info_client
local function directory_client()
  if not info_client or info_client.directory_url ~= options.directory_url then
    info_client = acme_client.new({
      directory_url = options.directory_url,
      timeout = options.timeout,
      account_key = assert(require("edge.acme.crypto").generate_key("ec-p256")),
    })
  end
  return info_client
end

-- The CA's ARI window for a certificate (edge.acme.renewal_info.fetch): a window, false when
-- the CA offers no ARI, or nil and an error.
function _M.renewal_info(cert_id)
  return renewal_info.fetch(directory_client(), cert_id)
end

-- Records the name's state for the domains API; best effort (an order never fails for it).
local function record(adapter, domain, state, fields)
  local call_ok, ok, err = pcall(domain_status.set, adapter, domain, state, fields)
  if not call_ok or not ok then
    err = call_ok and err or ok
    ngx.log(ngx.WARN, "edge: the state of ", domain, " (", state, ") was not recorded: ", err)
  end
end

-- Whether the CA offers ARI (its directory, fetched once per worker, has renewalInfo).
-- After a failure to learn it (no account, no directory), false for a minute: a pass does not
-- wait on the CA for every name.
local directory_failed_at = -math.huge
function _M.offers_renewal_info()
  if ngx.now() - directory_failed_at < 60 then
    return false
  end
  local dir = directory_client():directory()
  if type(dir) ~= "table" then
    directory_failed_at = ngx.now()
    return false
  end
  return type(dir.renewalInfo) == "string"
end

-- Orders, stores and returns a certificate for domain. opts.replaces: the ARI identifier of
-- the certificate it renews (sent where the CA offers ARI).
function _M.issue_cert(auto_ssl_instance, domain, opts)
  local storage = auto_ssl_instance.storage
  local adapter = storage.adapter
  local deadline = ngx.now() + options.order_timeout

  local cooloff = adapter:ttl(ACCOUNT_COOLOFF_KEY)
  if type(cooloff) == "number" and cooloff > 0 then
    local why = "the ACME account is rate-limited for " .. math.ceil(cooloff) .. " s more"
    record(adapter, domain, "cooling_off", { reason = why, next_attempt_at = math.ceil(ngx.now() + cooloff) })
    return nil, why
  end
  record(adapter, domain, "issuing", {})

  slots = slots or semaphore.new(options.max_concurrent_orders)
  local ok, wait_err = slots:wait(deadline - ngx.now())
  if not ok then
    metrics.inc("edge_orders_total", "result", "queue_timeout")
    return nil, "no order slot within the order timeout: " .. tostring(wait_err)
  end
  local started = ngx.now()
  local call_ok, cert, err, problem = pcall(order, storage, domain, deadline, opts and opts.replaces)
  slots:post()
  if not call_ok then
    record(adapter, domain, "failing", { last_error = "ACME client error" })
    return nil, "ACME client error: " .. tostring(cert)
  end

  if not cert then
    if is(problem, "rateLimited") then
      local retry_after = math.max(1, math.ceil(problem.retry_after or 3600))
      metrics.inc("edge_orders_total", "result", "rate_limited")
      if account_limit(problem) then
        adapter:set(ACCOUNT_COOLOFF_KEY, "1", { exptime = retry_after })
      end
      -- The name's order mark (allow_domain's cool-off) lasts as long as the CA asks.
      adapter:set("edge:order:" .. domain, "failed", { exptime = retry_after })
    end
    local detail = problem and (problem.type .. ": " .. tostring(problem.detail)) or ""
    local why = "ACME order for " .. domain .. " failed: " .. tostring(err) .. (detail ~= "" and (" (" .. detail .. ")") or "")
    if is(problem, "rateLimited") then
      record(adapter, domain, "cooling_off", { reason = "rate-limited by the CA", last_error = why,
        next_attempt_at = math.ceil(ngx.now() + math.max(1, problem.retry_after or 3600)) })
    else
      record(adapter, domain, "failing", { last_error = why })
    end
    return nil, why
  end

  local stored, store_err = storage:set_cert(domain, cert.fullchain_pem, cert.privkey_pem, cert.cert_pem, cert.expiry)
  if not stored then
    -- A name deleted meanwhile has no state to record any more.
    if store_err ~= redis_storage.DELETED then
      record(adapter, domain, "failing", { last_error = "issued, but not stored" })
    end
    return nil, "issued, but not stored: " .. tostring(store_err)
  end
  record(adapter, domain, "issued", { reason = false, last_error = false, next_attempt_at = false,
    issued_at = string.format("%.3f", ngx.now()) })
  ngx.log(ngx.NOTICE, "edge: issued a certificate for ", domain, " in ", string.format("%.3f", ngx.now() - started), " s")
  return cert
end

return _M
