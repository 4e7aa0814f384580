-- A Redis script (run with EVAL by edge.store.cert_changes and by the certs CLI), not an nginx
-- module: writes or deletes a certificate entry and records the change in the feed, atomically,
-- so that no reader can see a later sequence number before an earlier change is recorded.
-- KEYS: the entry ("<prefix>:<name>:latest"), the sequence counter, the feed (sorted set:
-- name -> sequence of its latest change), the trim mark (highest sequence dropped from the feed).
-- ARGV: the name, the new value (absent: delete the entry).
-- Returns the number of entries written or deleted.
-- The feed keeps the latest change of this many names; a reader further behind forgets everything.
local MAX_NAMES = 10000
local changed
if ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[2])
  changed = 1
else
  changed = redis.call('DEL', KEYS[1])
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
local excess = redis.call('ZCARD', KEYS[3]) - MAX_NAMES
if excess > 0 then
  local last_dropped = redis.call('ZRANGE', KEYS[3], excess - 1, excess - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
  redis.call('SET', KEYS[4], last_dropped[2])
end
return changed
