-- Works the names the domains API queued (edge.store.domain_status): worker 0 of every instance
-- claims a few due names each second, so whichever pod is free works them, and a pod that dies
-- mid-order leaves its claims to the others once they lapse. Each name goes through the same
-- policy as a handshake's (edge.allow_domain: the domain check, the stored certificate, the
-- cool-off, the DNS pre-check, the order mark, then the order), and its outcome becomes its state.
local domain_status = require "edge.store.domain_status"
local metrics = require "edge.metrics"

local _M = {}

local TICK_SECONDS = 1
local CLAIMS_PER_TICK = 8
-- Longer than an order may take (the order timeout) plus a peer's wait.
local CLAIM_SECONDS = 120
-- A name whose DNS does not point at the edge yet is looked at again after 1, 5, 15 minutes,
-- then hourly.
local DNS_BACKOFF = { 60, 300, 900 }
local DNS_BACKOFF_AFTER = 3600
-- After an error (the domain check or the store did not answer): again in a minute.
local ERROR_RETRY = 60

local function remaining(adapter, key)
  local ttl = adapter:ttl(key)
  return type(ttl) == "number" and ttl > 0 and ttl or nil
end

-- Works one claimed name. opts: policy (edge.allow_domain), auto_ssl (the instance).
local function work(opts, name)
  local adapter = opts.auto_ssl.storage.adapter
  -- A registration asks the domain check afresh (not this instance's cached verdict, which may
  -- be a denial from before the product added the name); other instances forget theirs when
  -- the certificate is stored (edge.serve.cert_cache).
  opts.policy.domain_check:forget(name)
  local ok, reason, detail = opts.policy:allow(name, opts.auto_ssl, nil, false)
  ngx.update_time()
  local now = ngx.now()
  if ok then
    -- Issued now, or already in the store.
    domain_status.set(adapter, name, "issued", { reason = false, dns = false })
    domain_status.dequeue(adapter, name)
    return "issued"
  end
  if reason == "denied" then
    domain_status.set(adapter, name, "not_allowed", { reason = "the domain check does not allow this name" })
    domain_status.dequeue(adapter, name)
  elseif reason == "edge_hostname" then
    domain_status.forget(adapter, name)
  elseif reason == "dns_not_pointing" then
    local status = domain_status.get(adapter, name) or {}
    local attempts = (tonumber(status.dns_attempts) or 0) + 1
    local at = now + (DNS_BACKOFF[attempts] or DNS_BACKOFF_AFTER)
    domain_status.set(adapter, name, "dns_not_pointing", {
      reason = "the name does not point at the edge yet", dns = detail, dns_attempts = attempts,
      next_attempt_at = math.ceil(at),
    })
    domain_status.enqueue(adapter, name, at)
  elseif reason == "cooloff" or reason == "order_failed" then
    -- The name's order mark says when the next order may be placed.
    local at = now + (remaining(adapter, "edge:order:" .. name) or ERROR_RETRY)
    local status = domain_status.get(adapter, name) or {}
    local state = status.state == "cooling_off" and "cooling_off" or (reason == "order_failed" and "failing" or "cooling_off")
    domain_status.set(adapter, name, state, {
      reason = reason == "cooloff" and "a recent order of this name failed; waiting before the next" or false,
      next_attempt_at = math.ceil(at),
    })
    domain_status.enqueue(adapter, name, at)
  else
    domain_status.set(adapter, name, "failing", { last_error = "not ordered: " .. tostring(reason), next_attempt_at = math.ceil(now + ERROR_RETRY) })
    domain_status.enqueue(adapter, name, now + ERROR_RETRY)
  end
  return reason
end

local function report(adapter)
  local counts = domain_status.counts(adapter)
  if not counts then
    return
  end
  metrics.set("edge_domains_queue_depth", counts.queue)
  for _, state in ipairs(domain_status.STATES) do
    metrics.set("edge_domains", counts[state], "state", state)
  end
end

-- opts: policy, auto_ssl. Starts the loop on worker 0.
function _M.start(opts)
  if ngx.worker.id() ~= 0 then
    return
  end
  local function tick(premature)
    if premature or ngx.worker.exiting() then
      return
    end
    local adapter = opts.auto_ssl.storage.adapter
    local names, err = domain_status.claim(adapter, CLAIMS_PER_TICK, CLAIM_SECONDS)
    if not names then
      ngx.log(ngx.WARN, "edge: registration queue: the store failed: ", err)
    else
      local threads = {}
      for _, name in ipairs(names) do
        threads[#threads + 1] = ngx.thread.spawn(work, opts, name)
      end
      for _, thread in ipairs(threads) do
        local ok, outcome = ngx.thread.wait(thread)
        if not ok then
          ngx.log(ngx.ERR, "edge: registration queue: ", outcome)
        end
      end
      report(adapter)
    end
    local ok, timer_err = ngx.timer.at(TICK_SECONDS, tick)
    if not ok and not ngx.worker.exiting() then
      ngx.log(ngx.ERR, "edge: registration queue: cannot schedule the next tick: ", timer_err)
    end
  end
  ngx.timer.at(0, tick)
end

return _M
