-- The store's feed of certificate changes. Every write or delete of a "<name>:latest" entry, by
-- any pod (issuance, renewal) or by the certs CLI, goes through one Redis script
-- (record_cert_change.lua) that also gives the name the next sequence number and keeps the
-- renewal index (edge.renewal.index) in step. Each worker polls the sequence and forgets what
-- it cached of the names changed since the one it last saw.
local _M = {}

local EMPTY = {}

-- The script's text, read once when the module loads (in the master, before the workers fork).
local SCRIPT = (function()
  local path = assert(package.searchpath("edge.store.record_cert_change", package.path))
  local file = assert(io.open(path))
  local text = file:read("*a")
  file:close()
  return text
end)()

-- The renewal index: sorted sets of names, and each name's renewal state (a hash). The certs CLI
-- (bin/certs/cert-store-client.ts) names the same keys.
_M.INDEX = {
  due = "edge:renew-due",       -- when the renewer next looks at the name
  renew_at = "edge:renew-at",   -- when the certificate should be renewed
  expiry = "edge:cert-expiry",  -- its notAfter
  alarm_at = "edge:alarm-at",   -- when its coming expiry alarms
}
function _M.state_key(name)
  return "edge:renewal:" .. name
end

local function keys(adapter, name)
  return adapter:prefixed(name .. ":latest"), adapter:prefixed("edge:cert-seq"),
    adapter:prefixed("edge:cert-changes"), adapter:prefixed("edge:cert-changes-trimmed")
end

-- The script's answers besides a count of changed entries.
_M.REINDEX_FOUND_NEWER, _M.REFUSED_DELETED = -1, -2

-- Writes (value, with the certificate's notBefore and notAfter in Unix seconds) or deletes (no
-- value) the certificate entry of `name`, recording the change and indexing it for renewal.
-- reindex: only index the entry if it still holds value. connection: an open
-- edge.redis_client connection to the adapter's store.
function _M.record(adapter, connection, name, value, not_before, not_after, reindex)
  local entry, seq, feed, trimmed = keys(adapter, name)
  local i = _M.INDEX
  local args = { name }
  if value then
    args = { name, value, not_before or "", not_after or "", reindex and "reindex" or "" }
  end
  return connection:command("EVAL", SCRIPT, 10, entry, seq, feed, trimmed, adapter:prefixed(i.due),
    adapter:prefixed(i.renew_at), adapter:prefixed(i.expiry), adapter:prefixed(i.alarm_at),
    adapter:prefixed(_M.state_key(name)), adapter:prefixed("edge:order:" .. name), unpack(args))
end

-- What changed after sequence `seen`: { seq = current sequence, names = list of names }, or
-- { seq, everything = true } when the feed no longer reaches back to `seen` (or the store was
-- reset), or nil and an error.
function _M.since(adapter, seen)
  local _, seq_key, feed, trimmed_key = keys(adapter, "")
  return adapter:with_connection(function(connection)
    local seq, err = connection:command("GET", seq_key)
    if seq == nil then
      return nil, err
    end
    seq = tonumber(seq) or 0
    if seq == seen then
      return { seq = seq, names = EMPTY }
    end
    local trimmed
    trimmed, err = connection:command("GET", trimmed_key)
    if trimmed == nil then
      return nil, err
    end
    if seq < seen or (tonumber(trimmed) or 0) > seen then
      return { seq = seq, everything = true }
    end
    local names
    names, err = connection:command("ZRANGEBYSCORE", feed, "(" .. seen, seq)
    if names == nil then
      return nil, err
    end
    return { seq = seq, names = names }
  end)
end

return _M
