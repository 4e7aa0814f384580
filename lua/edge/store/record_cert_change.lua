-- A Redis script (run with EVAL by edge.store.cert_changes and by the certs CLI), not an nginx
-- module: writes or deletes a certificate entry, records the change in the feed, and keeps the
-- renewal index (edge.renewal) in step, atomically, so that no reader can see a later sequence
-- number before an earlier change is recorded, nor a certificate without its index entries.
-- KEYS: the entry ("<prefix>:<name>:latest"), the sequence counter, the feed (sorted set:
-- name -> sequence of its latest change), the trim mark (highest sequence dropped from the feed),
-- then the renewal index: due (name -> when the renewer next looks at it), renew-at (name ->
-- when it should be renewed), expiry (name -> notAfter), alarm-at (name -> when its expiry
-- alarms), the name's renewal state (a hash), and its order mark.
-- ARGV: the name, the new value (absent: delete the entry), the certificate's notBefore and
-- notAfter (Unix seconds, or ""; with a value), and "reindex" to index the entry only if it
-- still holds this value (the renewer indexing an entry written before the index existed).
-- Returns the number of entries changed (written with a new value, or deleted); -1 when a
-- "reindex" found another value (a newer write, which indexed itself); -2 when a value is
-- refused because the name was just deleted (its order mark says "deleted": an order still
-- running when the domains API deleted the name must not bring its certificate back).
-- The feed keeps the latest change of this many names; a reader further behind forgets everything.
local MAX_NAMES = 10000
-- Without a window from the CA (ARI), renew at two thirds of the lifetime.
local RENEW_AT_FRACTION = 2 / 3
-- The first ARI look at a new certificate (then as the CA's Retry-After says): about twice a day.
local FIRST_CHECK_SECONDS = 43200
-- Alarm when a certificate is this close to expiry: 7 days, or a tenth of a shorter lifetime.
local ALARM_SECONDS, ALARM_FRACTION = 7 * 86400, 0.1

local entry, due, renew_at_key, expiry, alarm_at, state, order_mark = KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local name = ARGV[1]
local changed
if ARGV[2] then
  if redis.call('GET', order_mark) == 'deleted' then
    return -2
  end
  if ARGV[5] == 'reindex' and redis.call('GET', entry) ~= ARGV[2] then
    return -1
  end
  -- The same value again (the renewer indexing an entry written before the index existed):
  -- only the index changes; the feed records nothing.
  local unchanged = redis.call('GET', entry) == ARGV[2]
  redis.call('SET', entry, ARGV[2])
  changed = unchanged and 0 or 1
  redis.call('DEL', state)
  local not_before, not_after = tonumber(ARGV[3]), tonumber(ARGV[4])
  if not_before and not_after and not_after > not_before then
    local lifetime = not_after - not_before
    local renew_at = math.floor(not_before + lifetime * RENEW_AT_FRACTION)
    local now = tonumber(redis.call('TIME')[1])
    redis.call('ZADD', due, math.min(renew_at, now + FIRST_CHECK_SECONDS), name)
    redis.call('ZADD', renew_at_key, renew_at, name)
    redis.call('ZADD', expiry, not_after, name)
    redis.call('ZADD', alarm_at, not_after - math.min(ALARM_SECONDS, math.floor(lifetime * ALARM_FRACTION)), name)
    redis.call('HSET', state, 'not_before', not_before, 'not_after', not_after, 'renew_at', renew_at)
  else
    -- No validity to schedule by: the renewer looks at it now (and reads it then); what the
    -- previous certificate had scheduled no longer applies.
    for _, index in ipairs({ renew_at_key, expiry, alarm_at }) do
      redis.call('ZREM', index, name)
    end
    redis.call('ZADD', due, 0, name)
  end
else
  changed = redis.call('DEL', entry)
  for _, index in ipairs({ due, renew_at_key, expiry, alarm_at }) do
    redis.call('ZREM', index, name)
  end
  redis.call('DEL', state)
end
if changed == 0 then
  return 0
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, name)
local excess = redis.call('ZCARD', KEYS[3]) - MAX_NAMES
if excess > 0 then
  local last_dropped = redis.call('ZRANGE', KEYS[3], excess - 1, excess - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
  redis.call('SET', KEYS[4], last_dropped[2])
end
return changed
