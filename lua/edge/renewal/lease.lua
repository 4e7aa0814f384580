-- A lease in the store: at most one holder per environment. Taken with SET NX PX, extended
-- only by its holder (one script compares and extends), released by its holder. A holder that
-- stops, or can no longer reach the store, loses it when its TTL runs out; it stops acting on
-- it by then too (it counts the TTL from before it asked, so it never believes in a lease the
-- store has already expired).
local _M = {}
local mt = { __index = _M }

-- KEYS[1]: the lease; ARGV: holder, TTL (ms). 1: held by ARGV[1] now; 0: held by another.
local HOLD = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
]]

local RELEASE = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
]]

local function host_name()
  local file = io.open("/proc/sys/kernel/hostname")
  local name = file and file:read("*l")
  if file then
    file:close()
  end
  return name or "unknown-host"
end

-- adapter: edge.redis_storage; opts: key (without the prefix), ttl (s), holder (default
-- "<host name>/<pid>/<random>": a pod's name in Kubernetes).
function _M.new(adapter, opts)
  return setmetatable({
    adapter = adapter,
    key = opts.key,
    ttl = opts.ttl,
    holder = opts.holder or string.format("%s/%d/%08x", host_name(), ngx.worker.pid(), math.random(0, 0x7fffffff)),
    valid_until = 0,
    extended_at = 0,
  }, mt)
end

local function eval(self, script, ...)
  local args = { ... }
  return self.adapter:with_connection(function(connection)
    return connection:command("EVAL", script, 1, self.adapter:prefixed(self.key), unpack(args))
  end)
end

-- Takes or extends the lease. Returns whether this holder has it now (and, on a store error,
-- the error: the lease is then still believed only until its last known expiry).
function _M.hold(self)
  ngx.update_time()
  local asked = ngx.now()
  local held, err = eval(self, HOLD, self.holder, math.floor(self.ttl * 1000))
  if held == 1 then
    self.valid_until, self.extended_at = asked + self.ttl, asked
  elseif held == 0 then
    self.valid_until = 0
  end
  return self:held(), err
end

-- Whether the lease is this holder's, by the last answer of the store.
function _M.held(self)
  ngx.update_time()
  return ngx.now() < self.valid_until
end

-- For long work under the lease: extends it when a third of its TTL has passed since the last
-- extension. Returns whether the lease is still this holder's.
function _M.keep(self)
  ngx.update_time()
  if ngx.now() - self.extended_at >= self.ttl / 3 then
    return (self:hold())
  end
  return self:held()
end

function _M.release(self)
  self.valid_until = 0
  return eval(self, RELEASE, self.holder)
end

-- The current holder's name, or nil when nobody holds it.
function _M.holder_of(adapter, key)
  local holder, err = adapter:get(key)
  return holder, err
end

return _M
