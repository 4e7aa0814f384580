-- What the store knows of a customer domain beyond its certificate: its state for the domains
-- API, why it is in it, and the registration queue.
--   hash  edge:domain:<name>   state, reason, last_error, next_attempt_at, dns, registered_at,
--                              first_handshake_at, first_served_at, updated_at
--   zsets edge:domains:<state> the names in each state (score 0: paged by name)
--   zset  edge:domain-queue    names to work, scored by when (a worker that claims one pushes
--                              its score past its claim, so a pod that dies leaves it to another)
-- A name's state moves between the sets in one script, so a listing never shows it twice.
local _M = {}

-- The states kept here; "issued" and "expired" of a stored certificate come from the store's
-- certificate index (edge.store.cert_changes), the truth about certificates.
_M.STATES = { "queued", "issuing", "issued", "failing", "cooling_off", "not_allowed", "dns_not_pointing" }
local KNOWN = {}
for _, state in ipairs(_M.STATES) do
  KNOWN[state] = true
end

_M.QUEUE = "edge:domain-queue"

function _M.status_key(name)
  return "edge:domain:" .. name
end

function _M.state_set(state)
  return "edge:domains:" .. state
end

-- KEYS[1]: the name's hash; ARGV: name, new state, prefix of the state sets, then field/value
-- pairs (an empty value deletes the field). Moves the name to the new state's set.
local SET_STATE = [[
local old = redis.call('HGET', KEYS[1], 'state')
if old and old ~= ARGV[2] then
  redis.call('ZREM', ARGV[3] .. old, ARGV[1])
end
redis.call('ZADD', ARGV[3] .. ARGV[2], 0, ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2])
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return old or false
]]

-- Sets the state of a name, with fields (a table; false or "" removes a field). Returns true,
-- or nil and an error.
function _M.set(adapter, name, state, fields)
  assert(KNOWN[state], "domain_status: unknown state " .. tostring(state))
  ngx.update_time()
  local args = { "updated_at", string.format("%.3f", ngx.now()) }
  for field, value in pairs(fields or {}) do
    args[#args + 1] = field
    args[#args + 1] = value == false and "" or tostring(value)
  end
  local ok, err = adapter:with_connection(function(connection)
    return connection:command("EVAL", SET_STATE, 1, adapter:prefixed(_M.status_key(name)), name, state,
      adapter:prefixed(_M.state_set("")), unpack(args))
  end)
  if ok == nil then
    return nil, err
  end
  return true
end

-- The name's status hash as a table (empty when unknown), or nil and an error.
function _M.get(adapter, name)
  local reply, err = adapter:with_connection(function(connection)
    return connection:command("HGETALL", adapter:prefixed(_M.status_key(name)))
  end)
  if not reply then
    return nil, err
  end
  local status = {}
  for i = 1, #reply, 2 do
    status[reply[i]] = reply[i + 1]
  end
  return status
end

-- Sets a field only if the name has none yet (HSETNX): e.g. when it was first seen.
function _M.set_once(adapter, name, field, value)
  return adapter:with_connection(function(connection)
    return connection:command("HSETNX", adapter:prefixed(_M.status_key(name)), field, value)
  end)
end

-- KEYS[1]: the name's hash; ARGV: now. Marks the first trusted handshake once (also of a name
-- never seen first, a certificate from before the API: not timed, and not asked about again);
-- returns the seconds since the name was first seen, or false.
local FIRST_SERVED = [[
if redis.call('HEXISTS', KEYS[1], 'first_served_at') == 1 then
  return false
end
redis.call('HSET', KEYS[1], 'first_served_at', ARGV[1])
local seen = redis.call('HGET', KEYS[1], 'first_seen_at')
if not seen then
  return false
end
return tostring(tonumber(ARGV[1]) - tonumber(seen))
]]

-- After a handshake served the name's certificate: the seconds from its first sighting to this
-- first trusted handshake, the first time only; else nil.
function _M.first_served(adapter, name)
  ngx.update_time()
  local elapsed = adapter:with_connection(function(connection)
    return connection:command("EVAL", FIRST_SERVED, 1, adapter:prefixed(_M.status_key(name)), string.format("%.3f", ngx.now()))
  end)
  return tonumber(elapsed)
end

-- Puts a name in the queue, to be worked at `at` (Unix seconds; now if absent).
function _M.enqueue(adapter, name, at)
  ngx.update_time()
  return adapter:with_connection(function(connection)
    return connection:command("ZADD", adapter:prefixed(_M.QUEUE), string.format("%.3f", at or ngx.now()), name)
  end)
end

function _M.dequeue(adapter, name)
  return adapter:with_connection(function(connection)
    return connection:command("ZREM", adapter:prefixed(_M.QUEUE), name)
  end)
end

-- KEYS[1]: the queue; ARGV: now, claim seconds, how many. The due names, each pushed past its claim.
local CLAIM = [[
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, name in ipairs(names) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), name)
end
return names
]]

-- Claims up to `count` due names for `claim_seconds` (then they are due again, for any pod).
function _M.claim(adapter, count, claim_seconds)
  ngx.update_time()
  return adapter:with_connection(function(connection)
    return connection:command("EVAL", CLAIM, 1, adapter:prefixed(_M.QUEUE), string.format("%.3f", ngx.now()),
      claim_seconds, count)
  end)
end

-- Names in a state, after `cursor` (a name; "" for the first page), at most `limit`, in name
-- order. Returns the names and the next cursor ("" when there are no more).
function _M.list(adapter, state, cursor, limit)
  local names, err = adapter:with_connection(function(connection)
    return connection:command("ZRANGEBYLEX", adapter:prefixed(_M.state_set(state)),
      cursor ~= "" and "(" .. cursor or "-", "+", "LIMIT", 0, limit + 1)
  end)
  if not names then
    return nil, err
  end
  local next_cursor = ""
  if #names > limit then
    names[#names] = nil
    next_cursor = names[#names]
  end
  return names, next_cursor
end

-- How many names are queued and in each state (for the gauges), or nil and an error.
function _M.counts(adapter)
  return adapter:with_connection(function(connection)
    local counts = {}
    local queued, err = connection:command("ZCARD", adapter:prefixed(_M.QUEUE))
    if not queued then
      return nil, err
    end
    counts.queue = queued
    for _, state in ipairs(_M.STATES) do
      local n
      n, err = connection:command("ZCARD", adapter:prefixed(_M.state_set(state)))
      if not n then
        return nil, err
      end
      counts[state] = n
    end
    return counts
  end)
end

-- Forgets everything about a name but its certificate: its status, its state, its queue entry,
-- its order mark.
function _M.forget(adapter, name)
  return adapter:with_connection(function(connection)
    local keys = { adapter:prefixed(_M.status_key(name)), adapter:prefixed("edge:order:" .. name) }
    local ok, err = connection:command("DEL", unpack(keys))
    if not ok then
      return nil, err
    end
    ok, err = connection:command("ZREM", adapter:prefixed(_M.QUEUE), name)
    if not ok then
      return nil, err
    end
    for _, state in ipairs(_M.STATES) do
      ok, err = connection:command("ZREM", adapter:prefixed(_M.state_set(state)), name)
      if not ok then
        return nil, err
      end
    end
    return true
  end)
end

return _M
