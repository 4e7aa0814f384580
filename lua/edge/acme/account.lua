-- The environment's one ACME account, kept in the certificate store so that every pod and
-- every restart uses the same one (Let's Encrypt allows 10 new accounts per IP per 3 hours,
-- and pods share NAT addresses). The first instance that needs it registers it, under a
-- cluster-wide mark, and stores { key_pem, url }; the others wait for it. When the CA no longer
-- knows the account (accountDoesNotExist), `replace` registers a new one, once, the same way.
-- An account stored by the earlier dehydrated-based edge ({ "account_key.pem", ... }) is taken
-- over: its key is registered again, which the CA answers with the existing account.
local cjson = require "cjson.safe"
local crypto = require "edge.acme.crypto"
local metrics = require "edge.metrics"

local _M = {}

local STORE_KEY = "edge:acme-account"
local REGISTERING_KEY = "edge:acme-account:registering"
-- An account key is ECDSA P-256 (ES256): small JWS, fast signatures.
local ACCOUNT_KEY_TYPE = "ec-p256"

local function decode(stored)
  local value = cjson.decode(stored)
  if type(value) ~= "table" then
    return nil
  end
  local pem = value.key_pem or value["account_key.pem"]
  local key = pem and crypto.key_from_pem(pem)
  if not key then
    return nil
  end
  return { key = key, key_pem = pem, url = value.url }
end

local function encode(account)
  -- Only the key and the URL: the rest is derived.
  return cjson.encode({ key_pem = account.key_pem, url = account.url })
end

-- Registers `account.key` (new_client(key) gives an ACME client for it) and fills in its URL.
local function register(account, new_client)
  local url, err = new_client(account.key):register()
  if not url then
    return nil, "ACME account registration failed: " .. tostring(err)
  end
  account.url = url
  return account
end

-- Returns the stored account unless it is missing, unregistered (a dehydrated-era key) or the
-- one whose URL is `stale_url`; in those cases, under the cluster-wide mark, make(stored or nil)
-- produces and registers the account to store. Instances that lose the mark wait for it.
local function exclusively(adapter, stale_url, make, wait)
  local deadline = ngx.now() + wait
  -- The stored account, or nil and an error; done (the account to use) when it needs no new one.
  local function read()
    local stored, err = adapter:get(STORE_KEY)
    if err then
      return nil, err
    end
    local account = stored and decode(stored)
    if stored and not account then
      return nil, "the stored ACME account is not valid"
    end
    return account, nil, account and account.url and account.url ~= stale_url
  end
  while true do
    local account, err, done = read()
    if err then
      return nil, err
    end
    if done then
      return account
    end
    local won
    won, err = adapter:add(REGISTERING_KEY, ngx.worker.pid(), wait)
    if err then
      return nil, err
    end
    if won then
      -- Another instance may have stored a new account between the read and the mark: read again.
      account, err, done = read()
      if err or done then
        adapter:delete(REGISTERING_KEY)
        return account, err
      end
      account, err = make(account and not account.url and account or nil)
      if account then
        local stored_ok, store_err = adapter:set(STORE_KEY, encode(account))
        err = not stored_ok and store_err or nil
      end
      adapter:delete(REGISTERING_KEY)
      if err then
        return nil, err
      end
      return account
    end
    if ngx.now() > deadline then
      return nil, "timed out waiting for another instance to register the ACME account"
    end
    ngx.sleep(0.05)
  end
end

-- A new account key, registered (`event` counted, `message` logged at `level`).
local function register_new(new_client, event, level, message)
  local key, err = crypto.generate_key(ACCOUNT_KEY_TYPE)
  if not key then
    return nil, err
  end
  metrics.inc("edge_acme_accounts_total", "event", event)
  ngx.log(level, "edge: ", message)
  return register({ key = key, key_pem = crypto.key_to_pem(key) }, new_client)
end

-- The environment's account: { key, key_pem, url }, registering it if there is none.
-- new_client(key): an edge.acme.client for that key (without an account URL yet).
function _M.load(adapter, new_client, wait)
  return exclusively(adapter, nil, function(existing)
    if existing then
      return register(existing, new_client)
    end
    return register_new(new_client, "registered", ngx.NOTICE,
      "registering the ACME account of this environment, stored for every instance")
  end, wait or 30)
end

-- The CA no longer knows `account`: registers a new one, once across the cluster (an instance
-- that finds the store already holding another account uses that one).
function _M.replace(adapter, account, new_client, wait)
  return exclusively(adapter, account.url, function()
    return register_new(new_client, "reregistered", ngx.WARN,
      "the ACME server no longer knows this environment's account: registering a new one")
  end, wait or 30)
end

return _M
