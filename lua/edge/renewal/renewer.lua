-- The environment's renewer: one pass over the names the renewal index says are due (the
-- lease, edge.renewal.lease, makes sure one instance runs passes at a time). The index is kept
-- by the store's write script (edge.store.record_cert_change): each stored certificate is
-- scheduled at two thirds of its lifetime, and looked at earlier where the CA offers ARI.
-- A due name is:
--   * scheduled by ARI where the CA offers it: a random point in the suggested window, the
--     window re-fetched when its Retry-After says (a past or "now" window renews at this pass);
--   * renewed once its renew-at time has come, if the domain check still allows it, within the
--     renewal budget (a sliding hour in the store), the order carrying `replaces` under ARI;
--   * when no longer allowed: not renewed, asked again daily, and removed from the store once
--     it has expired;
--   * after a failure: retried after 1 min, 10 min, 100 min, then daily (the ARI guide's backoff).
-- No pass reads a certificate that is not due; it reads one only to compute its ARI identifier.
local cert_changes = require "edge.store.cert_changes"
local domain_status = require "edge.store.domain_status"
local redis_storage = require "edge.redis_storage"
local metrics = require "edge.metrics"

local _M = {}
local mt = { __index = _M }

local INDEX = cert_changes.INDEX
local ORDERS_KEY = "edge:renewal-orders"       -- sorted set: renewal orders of the last hour
local BACKFILLED_KEY = "edge:renew-index-backfilled"
local ACCOUNT_COOLOFF_KEY = "edge:acme-account:cooloff"
local BACKOFF = { 60, 600, 6000 }
local BACKOFF_AFTER = 86400
-- The renewer's hourly report line (its heartbeat for the RenewerSilent alarm).
local REPORT_SECONDS = 3600
-- A name the domain check no longer allows is asked again this often until it expires.
local RECHECK_NOT_ALLOWED = 86400
-- How long a name is set aside while its order runs (longer than an order may take).
local CLAIM_SECONDS = 300
-- ARI's Retry-After, bounded: at least a minute, at most a day; 12 h when the CA sends none.
local ARI_RETRY_MIN, ARI_RETRY_MAX, ARI_RETRY_DEFAULT = 60, 86400, 43200
-- After a failed ARI fetch, the certificate is scheduled by its own lifetime and ARI asked again in an hour.
local ARI_RETRY_AFTER_ERROR = 3600

-- opts:
--   storage: lua-resty-auto-ssl's storage (get_cert; its adapter is edge.redis_storage)
--   issue(domain, replaces) -> cert | nil, err: orders and stores a certificate
--   domain_check: edge.domain_check (request: asked afresh, never from the cache)
--   ari_offered() -> whether the CA offers ARI (its directory has renewalInfo)
--   renewal_info(cert_id) -> window | false (no ARI) | nil, err  (edge.acme.renewal_info.fetch)
--   cert_id(pem) -> the ARI identifier (edge.acme.crypto.ari_cert_id)
--   renewals_per_hour, pass_interval (s: sizes each pass's share of the hourly budget), batch
function _M.new(opts)
  return setmetatable({
    storage = opts.storage,
    adapter = opts.storage.adapter,
    issue = opts.issue,
    domain_check = opts.domain_check,
    -- Without it, renewal_info itself says (false) whether the CA offers ARI.
    ari_offered = opts.ari_offered or function() return true end,
    renewal_info = opts.renewal_info,
    cert_id = opts.cert_id,
    renewals_per_hour = opts.renewals_per_hour,
    pass_interval = opts.pass_interval,
    batch = opts.batch or 50,
    pending_due = {},
  }, mt)
end

local function now()
  ngx.update_time()
  return ngx.now()
end

-- Runs commands on one pooled connection; fn(command) gets a function that sends one command and
-- raises on error, so that a pass stops at the first store error rather than deciding on half
-- an answer.
local function store(self, fn)
  local result, err = self.adapter:with_connection(function(connection)
    local function command(...)
      local reply, command_err = connection:command(...)
      if reply == nil then
        error({ store_error = command_err })
      end
      return reply
    end
    local ok, value = pcall(fn, command)
    if not ok then
      if type(value) == "table" and value.store_error then
        return nil, value.store_error
      end
      error(value, 0)
    end
    return value == nil and ngx.null or value
  end)
  if result == nil then
    error({ store_error = err })
  end
  return result ~= ngx.null and result or nil
end

local function key(self, name)
  return self.adapter:prefixed(name)
end

local function hash(reply)
  local t = {}
  for i = 1, #reply, 2 do
    t[reply[i]] = reply[i + 1]
  end
  return t
end

-- Within a pass, new due times are sent in one ZADD per batch (flush_reschedules).
local function reschedule(self, name, at)
  -- Never into the past: a name looked at is not due again within this pass.
  at = math.max(at, now() + 1)
  local pending = self.pending_due
  pending[#pending + 1] = string.format("%.0f", math.ceil(at))
  pending[#pending + 1] = name
  if not self.in_pass then
    self:flush_reschedules()
  end
end

function _M.flush_reschedules(self)
  local pending = self.pending_due
  if #pending == 0 then
    return
  end
  self.pending_due = {}
  store(self, function(command)
    command("ZADD", key(self, INDEX.due), "XX", unpack(pending))
  end)
end

-- The renewal states of names, in one round trip: a list of HGETALL replies.
local READ_STATES = [[
local states = {}
for i, k in ipairs(KEYS) do
  states[i] = redis.call('HGETALL', k)
end
return states
]]
local function read_states(self, names)
  local keys = {}
  for i, name in ipairs(names) do
    keys[i] = key(self, cert_changes.state_key(name))
  end
  return store(self, function(command)
    return command("EVAL", READ_STATES, #keys, unpack(keys))
  end)
end

local function set_state(self, name, fields)
  local args = {}
  for field, value in pairs(fields) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  store(self, function(command)
    command("HSET", key(self, cert_changes.state_key(name)), unpack(args))
  end)
end

-- The stored certificate entry of a name, or nil.
local function stored(self, name)
  local cert, err = self.storage:get_cert(name)
  if err then
    error({ store_error = err })
  end
  return cert and cert.fullchain_pem and cert or nil
end

local function count(outcome)
  metrics.inc("edge_renewals_total", "outcome", outcome)
  return outcome
end

-- A name in the index without a schedule (written before the index existed, or unreadable):
-- written again through the store's script, which indexes it; dropped if it is gone.
local function index_entry(self, name)
  local value, get_err = self.adapter:get(name .. ":latest")
  if get_err then
    -- Not readable now (the store failed, or the key is not a string): looked at again later,
    -- never dropped, or a certificate could go unrenewed, and unwatched by the alarm.
    ngx.log(ngx.WARN, "edge: renewal: the stored entry of ", name, " could not be read: ", get_err)
    reschedule(self, name, now() + BACKOFF[1])
    return count("failed")
  end
  if not value then
    store(self, function(command)
      command("ZREM", key(self, INDEX.due), name)
    end)
    return count("unindexed_dropped")
  end
  local indexed, err = self.adapter:reindex(name, value)
  if not indexed then
    error({ store_error = err })
  end
  if indexed < 0 then
    -- A newer certificate was written meanwhile (and indexed itself), or the name was deleted.
    return count("indexed")
  end
  local state = hash(store(self, function(command)
    return command("HGETALL", key(self, cert_changes.state_key(name)))
  end))
  if not state.not_after then
    -- Still no validity: not a certificate we can schedule; looked at again daily.
    ngx.log(ngx.WARN, "edge: renewal: the stored certificate of ", name, " has no readable validity")
    reschedule(self, name, now() + BACKOFF_AFTER)
  end
  return count("indexed")
end

-- Asks the CA's ARI window for the name's certificate (when its last answer is due for a
-- refresh). Returns the renew-at time it gives (or nil) and when to ask again; nil, nil when ARI
-- is not in use (not offered, or not known to be: the directory could not be fetched).
local function ari_renew_at(self, name, state, t)
  if not self.ari_offered() then
    return nil, nil
  end
  if state.ari_next and t < tonumber(state.ari_next) then
    return tonumber(state.ari_point), tonumber(state.ari_next)
  end
  local cert_id = state.cert_id
  if not cert_id then
    local cert = stored(self, name)
    if not cert then
      return nil, nil
    end
    local id_err
    cert_id, id_err = self.cert_id(cert.cert_pem or cert.fullchain_pem)
    if not cert_id then
      ngx.log(ngx.WARN, "edge: renewal: no ARI identifier for ", name, ": ", id_err)
      return nil, nil
    end
    state.cert_id = cert_id
  end
  local window, err = self.renewal_info(cert_id)
  if window == false then
    return nil, nil
  end
  if not window then
    ngx.log(ngx.WARN, "edge: renewal: ARI for ", name, " failed (scheduling by lifetime): ", err)
    state.ari_next = math.ceil(t + ARI_RETRY_AFTER_ERROR)
    set_state(self, name, { cert_id = cert_id, ari_next = state.ari_next })
    return tonumber(state.ari_point), state.ari_next
  end
  local point = tonumber(state.ari_point)
  -- A new window gets a new random point in it; an unchanged one keeps its point.
  if not point or tonumber(state.ari_start) ~= window.window_start or tonumber(state.ari_end) ~= window.window_end then
    point = window.window_start + math.random() * (window.window_end - window.window_start)
  end
  -- A window reaching past the certificate's expiry is not followed past it.
  local not_after = tonumber(state.not_after)
  if not_after and point >= not_after then
    point = tonumber(state.renew_at)
  end
  local retry = math.min(ARI_RETRY_MAX, math.max(ARI_RETRY_MIN, window.retry_after or ARI_RETRY_DEFAULT))
  -- Whole seconds, rounded up as every other schedule is: the due time and ari_next agree.
  state.ari_next = math.ceil(t + retry)
  set_state(self, name, {
    cert_id = cert_id, ari_start = window.window_start, ari_end = window.window_end,
    ari_point = string.format("%.0f", point), ari_next = string.format("%.0f", state.ari_next),
  })
  store(self, function(command)
    command("ZADD", key(self, INDEX.renew_at), "XX", string.format("%.0f", point), name)
  end)
  state.ari_point = point
  return point, state.ari_next
end

-- Counts a renewal order against the hourly budget.
local function spend_budget(self, budget, name, t)
  budget.left = budget.left - 1
  store(self, function(command)
    command("ZADD", key(self, ORDERS_KEY), string.format("%.3f", t), name .. "@" .. string.format("%.3f", t))
  end)
end

local function failed(self, name, state, why, t)
  local attempts = (tonumber(state.attempts) or 0) + 1
  -- A short lifetime (a 160-hour certificate) leaves room for more than two daily tries: never
  -- wait more than a quarter of the time left.
  local left = (tonumber(state.not_after) or math.huge) - t
  local next_attempt = t + math.min(BACKOFF[attempts] or BACKOFF_AFTER, math.max(BACKOFF[1], left / 4))
  set_state(self, name, { attempts = attempts, last_error = why, next_attempt = math.ceil(next_attempt) })
  reschedule(self, name, next_attempt)
  ngx.log(ngx.WARN, "edge: renewal of ", name, " failed (attempt ", attempts, ", next in ",
    math.ceil(next_attempt - t), " s): ", why)
  return count("failed")
end

-- Decides about one due name. Returns its outcome; "budget" when the pass must stop.
-- (state_reply: the name's state as an HGETALL reply, when the pass has read it already.)
function _M.handle(self, name, budget, state_reply)
  local state = hash(state_reply or store(self, function(command)
    return command("HGETALL", key(self, cert_changes.state_key(name)))
  end))
  if not state.not_after then
    return index_entry(self, name)
  end
  local t = now()
  local not_after = tonumber(state.not_after)

  if state.not_allowed then
    -- Asked again daily until expiry, and at expiry: a 404 that was the product's mistake is
    -- undone (the name is indexed afresh, and renewed on its schedule).
    if self.domain_check:request(name) == "allowed" then
      ngx.log(ngx.NOTICE, "edge: renewal: ", name, " is allowed again by the domain check")
      return index_entry(self, name)
    end
    if t >= not_after then
      local ok, err = self.adapter:delete(name .. ":latest")
      if not ok then
        error({ store_error = err })
      end
      ngx.log(ngx.NOTICE, "edge: renewal: removed the expired certificate of ", name, ", which the domain check no longer allows")
      domain_status.set(self.adapter, name, "not_allowed", { reason = "the domain check no longer allows this name; its certificate expired and was removed" })
      return count("removed")
    end
    reschedule(self, name, math.min(not_after, t + RECHECK_NOT_ALLOWED))
    return count("not_allowed")
  end

  -- After a failure the name waits out its backoff (also when a pass lost its due time).
  local next_attempt = tonumber(state.next_attempt)
  if next_attempt and next_attempt > t then
    reschedule(self, name, next_attempt)
    return count("backing_off")
  end

  local renew_at = tonumber(state.renew_at)
  local ari_point, ari_next = ari_renew_at(self, name, state, t)
  renew_at = ari_point or renew_at
  if renew_at > t then
    reschedule(self, name, ari_next and math.min(renew_at, ari_next) or renew_at)
    return count("scheduled")
  end

  -- No room in this pass's budget: left where it is (due, in line) for the next pass, the
  -- domain check not asked; the pass goes on with the names that need no order.
  if budget.left <= 0 then
    return count("deferred")
  end

  local verdict = self.domain_check:request(name)
  if verdict == "denied" then
    set_state(self, name, { not_allowed = 1, last_error = "the domain check no longer allows this name" })
    reschedule(self, name, math.min(not_after, t + RECHECK_NOT_ALLOWED))
    -- Not to be renewed, by design: neither overdue nor a reason to alarm.
    store(self, function(command)
      command("ZREM", key(self, INDEX.renew_at), name)
      command("ZREM", key(self, INDEX.alarm_at), name)
    end)
    ngx.log(ngx.NOTICE, "edge: renewal: ", name, " is no longer allowed by the domain check: not renewed; removed once it expires")
    return count("not_allowed")
  elseif verdict ~= "allowed" then
    return failed(self, name, state, "the domain check did not answer", t)
  end

  spend_budget(self, budget, name, t)
  -- Claimed for as long as an order may take, before ordering: a renewer that takes the lease
  -- over while this order runs (the lease can run out during a long order) does not order it
  -- too. Storing the certificate reschedules it; a failure backs off; a crash retries it then.
  -- Written now, not with the batch's reschedules: it must be in the store before the order,
  -- and must not land after the new certificate's schedule.
  store(self, function(command)
    command("ZADD", key(self, INDEX.due), "XX", string.format("%.0f", math.ceil(t + CLAIM_SECONDS)), name)
  end)
  local replaces = ari_point and not state.no_replaces and state.cert_id or nil
  local cert, err = self.issue(name, replaces)
  if not cert then
    err = tostring(err)
    if err:find(redis_storage.DELETED, 1, true) then
      -- Deleted through the domains API while its order ran: nothing left to renew.
      store(self, function(command)
        command("DEL", key(self, cert_changes.state_key(name)))
      end)
      return count("deleted")
    end
    if replaces and err:find("alreadyReplaced", 1, true) then
      -- The CA took an earlier order as this certificate's replacement (one that was never
      -- stored): order without replaces from now on.
      set_state(self, name, { no_replaces = 1 })
    end
    return failed(self, name, state, err, t)
  end
  -- Storing it (the store's script) reset the name's state and scheduled the new certificate.
  ngx.log(ngx.NOTICE, "edge: renewed the certificate of ", name, replaces and " (ARI, replaces " .. replaces .. ")" or "")
  return count("renewed")
end

-- This pass's share of the budget: the hour's renewals left, paced over the hour's passes.
local function budget_for_pass(self, t)
  local used = store(self, function(command)
    command("ZREMRANGEBYSCORE", key(self, ORDERS_KEY), "-inf", string.format("%.3f", t - 3600))
    return command("ZCARD", key(self, ORDERS_KEY))
  end)
  local hour_left = math.max(0, self.renewals_per_hour - used)
  local pace = math.max(1, math.ceil(self.renewals_per_hour * self.pass_interval / 3600))
  return { left = math.min(hour_left, pace) }
end

-- Indexes, once per environment, the certificates stored before the index existed: each
-- listed name is made due now (ZADD NX, in chunks: a name already indexed keeps its schedule),
-- and the passes index it when they reach it. Returns false if the lease was lost meanwhile.
local BACKFILL_CHUNK = 500
local function backfill(self, keep)
  if self.backfilled then
    return true
  end
  local first = self.adapter:add(BACKFILLED_KEY, string.format("%.0f", now()))
  if not first then
    -- Done before (false), or the store failed (nil: the pass stops at its next command).
    self.backfilled = first == false
    return true
  end
  local entries, err = self.adapter:keys_with_suffix(":latest")
  if not entries then
    self.adapter:delete(BACKFILLED_KEY)
    error({ store_error = err })
  end
  local ok, result = pcall(function()
    for i = 1, #entries, BACKFILL_CHUNK do
      if not keep() then
        return false
      end
      local args = {}
      for j = i, math.min(i + BACKFILL_CHUNK - 1, #entries) do
        args[#args + 1] = 0
        args[#args + 1] = entries[j]:match("^(.+):latest$")
      end
      store(self, function(command)
        command("ZADD", key(self, INDEX.due), "NX", unpack(args))
      end)
    end
    return true
  end)
  if not ok or not result then
    -- Part of the names may be unindexed: a later pass backfills again.
    self.adapter:delete(BACKFILLED_KEY)
    if not ok then
      error(result, 0)
    end
    return false
  end
  self.backfilled = true
  ngx.log(ngx.NOTICE, "edge: renewal: indexed ", #entries, " stored certificates")
  return true
end

local REPORT_GAUGES = { "edge_certificates_past_renew_at", "edge_certificates_near_expiry",
  "edge_certificate_soonest_expiry_seconds", "edge_renewal_due" }

-- Removes the gauges of the index: an instance that is not the renewer does not report them.
function _M.clear_report()
  for _, name in ipairs(REPORT_GAUGES) do
    metrics.set(name, nil)
  end
end

-- Updates the gauges of the index (O(log n) each).
function _M.report(self)
  local t = now()
  local stamp = string.format("%.0f", t)
  local past, near, soonest, due = unpack(store(self, function(command)
    return {
      command("ZCOUNT", key(self, INDEX.renew_at), "-inf", stamp),
      command("ZCOUNT", key(self, INDEX.alarm_at), "-inf", stamp),
      command("ZRANGE", key(self, INDEX.expiry), 0, 0, "WITHSCORES"),
      command("ZCOUNT", key(self, INDEX.due), "-inf", stamp),
    }
  end))
  metrics.set("edge_certificates_past_renew_at", past)
  metrics.set("edge_certificates_near_expiry", near)
  metrics.set("edge_certificate_soonest_expiry_seconds", soonest[2] and math.floor(tonumber(soonest[2]) - t) or nil)
  metrics.set("edge_renewal_due", due)
  if near > 0 then
    -- The CloudWatch alarm counts this line (lib/edge-monitoring.ts).
    ngx.log(ngx.WARN, "edge: renewal: ", near, " certificates near expiry (soonest: ", soonest[1], " in ",
      math.floor(tonumber(soonest[2]) - t), " s)")
  end
  -- Once an hour: the renewer is alive (an alarm fires when these lines stop).
  if t - (self.reported_at or 0) >= REPORT_SECONDS then
    self.reported_at = t
    ngx.log(ngx.WARN, "edge: renewal report: ", due, " due, ", past, " past their renew-at time, ", near,
      " near expiry; soonest expiry in ", soonest[2] and math.floor(tonumber(soonest[2]) - t) or "-", " s")
  end
  return { past_renew_at = past, near_expiry = near, due = due }
end

-- Whether the ACME account is in its cool-off (edge.acme.provider set it after a rate limit).
local function cooling_off(self)
  local cooloff = self.adapter:ttl(ACCOUNT_COOLOFF_KEY)
  return type(cooloff) == "number" and cooloff > 0
end

-- One pass. keep(): whether the lease is still ours (extending it as needed). Returns a summary
-- { outcomes = { [outcome] = n }, stopped = why or nil }, or nil and the store error that stopped it.

function _M.pass(self, keep)
  local summary = { outcomes = {} }
  local ok, err = pcall(function()
    if cooling_off(self) then
      summary.stopped = "the ACME account is rate-limited"
      -- The gauges (and the near-expiry warning the alarm counts) still tell the truth.
      summary.gauges = self:report()
      return
    end
    if not backfill(self, keep) then
      summary.stopped = "lease lost"
      return
    end
    local budget = budget_for_pass(self, now())
    local seen = {}
    -- Names left due in place (deferred for the budget, or seen again): they keep the lowest
    -- scores, so the next batch starts after them, and they never hold back the names behind.
    local skipped, in_place = 0, {}
    local function leave_in_place(name)
      if not in_place[name] then
        in_place[name], skipped = true, skipped + 1
      end
    end
    self.in_pass = true
    while not summary.stopped do
      local names = store(self, function(command)
        return command("ZRANGEBYSCORE", key(self, INDEX.due), "-inf", string.format("%.0f", now()), "LIMIT", skipped, self.batch)
      end)
      local states = #names > 0 and read_states(self, names) or {}
      local fresh, skipped_before = 0, skipped
      for i, name in ipairs(names) do
        if not keep() then
          summary.stopped = "lease lost"
          break
        end
        -- A name handled once already (still due: a store race) waits for the next pass.
        if seen[name] then
          leave_in_place(name)
        else
          seen[name], fresh = true, fresh + 1
          local outcome = self:handle(name, budget, states[i])
          if outcome == "deferred" then
            leave_in_place(name)
          end
          summary.outcomes[outcome] = (summary.outcomes[outcome] or 0) + 1
          -- An order that put the account into its cool-off: every further order would fail
          -- at once, spending the budget and backing each name off for nothing.
          if outcome == "failed" and cooling_off(self) then
            summary.stopped = "the ACME account is rate-limited"
            break
          end
        end
      end
      self:flush_reschedules()
      if #names < self.batch or (fresh == 0 and skipped == skipped_before) then
        break
      end
    end
    self.in_pass = false
    summary.gauges = self:report()
  end)
  self.in_pass = false
  self.pending_due = {}
  if not ok then
    if type(err) == "table" and err.store_error then
      ngx.log(ngx.WARN, "edge: renewal pass stopped, the store failed: ", tostring(err.store_error))
      return nil, err.store_error
    end
    error(err, 0)
  end
  return summary
end

return _M
