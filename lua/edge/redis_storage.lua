-- A storage adapter for lua-resty-auto-ssl (its `storage_adapter` option), in place of the
-- bundled Redis adapter: bounded connect/read timeouts, a keepalive pool instead of one
-- connection held per request, TLS with certificate and host name verification, AUTH with an
-- optional ACL user, SET with EX in one command, SCAN instead of KEYS, and `add` (SET NX EX)
-- for our cluster-wide marks. Keys carry the environment prefix: "<prefix>:<key>".
local cjson = require "cjson.safe"
local redis_client = require "edge.redis_client"
local cert_changes = require "edge.store.cert_changes"

local _M = {}
local mt = { __index = _M }

-- auto_ssl:get("redis") holds: host, port, ssl, ssl_verify, server_name, username, password,
-- prefix, db, connect_timeout, read_timeout (ms), pool_size, keepalive_timeout (ms).
function _M.new(auto_ssl_instance)
  local o = auto_ssl_instance:get("redis") or {}
  local ssl = o.ssl or false
  local self = {
    host = o.host or "127.0.0.1",
    port = o.port or 6379,
    ssl = ssl,
    -- Verification and SNI are TLS settings: off without TLS, on by default with it.
    ssl_verify = ssl and o.ssl_verify ~= false,
    server_name = ssl and (o.server_name or o.host) or nil,
    username = o.username,
    password = o.password,
    prefix = o.prefix,
    db = o.db,
    connect_timeout = o.connect_timeout or 1000,
    read_timeout = o.read_timeout or 2000,
    pool_size = o.pool_size or 32,
    keepalive_timeout = o.keepalive_timeout or 60000,
  }
  self.pool = "edge-redis:" .. self.host .. ":" .. self.port .. ":" .. (self.prefix or "")
  return setmetatable(self, mt)
end

function _M.setup()
end

local function prefixed(self, key)
  if self.prefix then
    return self.prefix .. ":" .. key
  end
  return key
end
_M.prefixed = prefixed

-- The name of a certificate entry's key ("<name>:latest"), or nil for any other key.
local function certificate_name(key)
  return key:match("^(.+):latest$")
end

-- Runs fn(connection) on a pooled, authenticated connection. Returns fn's results, or nil and
-- an error. A connection that saw any error is closed rather than returned to the pool.
function _M.with_connection(self, fn)
  local connection, err = redis_client.connect(self)
  if not connection then
    return nil, "redis connect failed: " .. tostring(err)
  end

  if not connection:reused() then
    local ok, auth_err = true, nil
    if self.password and self.username then
      ok, auth_err = connection:command("AUTH", self.username, self.password)
    elseif self.password then
      ok, auth_err = connection:command("AUTH", self.password)
    end
    if ok and self.db then
      ok, auth_err = connection:command("SELECT", self.db)
    end
    if not ok then
      connection:close()
      return nil, "redis auth failed: " .. tostring(auth_err)
    end
  end

  local result, result_err = fn(connection)
  if result == nil then
    connection:close()
    return nil, "redis: " .. tostring(result_err)
  end
  connection:keepalive(self.keepalive_timeout, self.pool_size)
  return result
end

function _M.get(self, key)
  local value, err = self:with_connection(function(connection)
    return connection:command("GET", prefixed(self, key))
  end)
  if value == ngx.null then
    value = nil
  end
  return value, err
end

-- notBefore and notAfter of a certificate entry's certificate (auto-ssl's JSON), or nil: the
-- renewal index is scheduled by them.
local function validity(value)
  local entry = cjson.decode(value)
  local pem = type(entry) == "table" and (entry.cert_pem or entry.fullchain_pem)
  if type(pem) ~= "string" then
    return nil
  end
  return require("edge.acme.crypto").cert_validity(pem)
end

-- options.exptime: seconds until the key expires (set atomically with the value).
-- A certificate entry is written together with its change record and renewal index entries
-- (edge.store.cert_changes).
function _M.set(self, key, value, options)
  local name = certificate_name(key)
  local not_before, not_after
  if name then
    not_before, not_after = validity(value)
    if not not_before then
      ngx.log(ngx.WARN, "edge: the certificate of ", name, " has no readable validity; the renewer will look at it: ", not_after)
    end
  end
  local result, err = self:with_connection(function(connection)
    if name then
      return cert_changes.record(self, connection, name, value, not_before, not_after)
    end
    if options and options.exptime then
      return connection:command("SET", prefixed(self, key), value, "EX", math.ceil(options.exptime))
    end
    return connection:command("SET", prefixed(self, key), value)
  end)
  if result == cert_changes.REFUSED_DELETED then
    return nil, _M.DELETED
  end
  return result, err
end

-- Why a certificate write was refused: the domains API deleted the name moments ago.
_M.DELETED = "the name was deleted moments ago (domains API): the certificate is not stored"

-- Indexes a certificate entry for renewal if it still holds `value` (written before the index
-- existed). Returns the script's answer (cert_changes.REINDEX_FOUND_NEWER if a newer write came
-- first), or nil and an error.
function _M.reindex(self, name, value)
  local not_before, not_after = validity(value)
  return self:with_connection(function(connection)
    return cert_changes.record(self, connection, name, value, not_before or nil, not_before and not_after or nil, true)
  end)
end

-- A conditional SET (NX, XX...): true if it was set, false if the condition did not hold.
local function set_if(self, key, value, ...)
  local args = { ... }
  local result, err = self:with_connection(function(connection)
    return connection:command("SET", prefixed(self, key), value, unpack(args))
  end)
  if err then
    return nil, err
  end
  return result == "OK"
end

-- Sets the key only if it does not exist, expiring after exptime seconds (none: never).
function _M.add(self, key, value, exptime)
  if exptime then
    return set_if(self, key, value, "NX", "EX", math.ceil(exptime))
  end
  return set_if(self, key, value, "NX")
end

-- Replaces the value of an existing key, keeping its expiry.
function _M.replace(self, key, value)
  return set_if(self, key, value, "XX", "KEEPTTL")
end

function _M.delete(self, key)
  local name = certificate_name(key)
  return self:with_connection(function(connection)
    if name then
      return cert_changes.record(self, connection, name)
    end
    return connection:command("DEL", prefixed(self, key))
  end)
end

-- Seconds until the key expires (-2: no such key, -1: no expiry).
function _M.ttl(self, key)
  return self:with_connection(function(connection)
    return connection:command("TTL", prefixed(self, key))
  end)
end

-- Keys ending in suffix, without the prefix. SCAN, so Redis is never blocked by one call.
function _M.keys_with_suffix(self, suffix)
  local pattern = prefixed(self, "*" .. suffix)
  local offset = self.prefix and #self.prefix + 2 or 1
  return self:with_connection(function(connection)
    local keys, cursor = {}, "0"
    repeat
      local reply, err = connection:command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
      if not reply then
        return nil, err
      end
      cursor = reply[1]
      for _, key in ipairs(reply[2]) do
        keys[#keys + 1] = key:sub(offset)
      end
    until cursor == "0"
    return keys
  end)
end

return _M
