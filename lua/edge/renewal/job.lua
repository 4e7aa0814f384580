-- Runs the renewer on one worker of one instance per environment: worker 0 of every instance
-- tries for the lease every third of its TTL; the holder runs a pass every pass_interval
-- (jittered by ±20 %, so instances started together drift apart), extending the lease while it
-- works. An exiting worker gives the lease up, so another instance takes over at its next try.
local lease_module = require "edge.renewal.lease"
local metrics = require "edge.metrics"

local _M = {}

local LEASE_KEY = "edge:renewer-lease"

-- opts: adapter (edge.redis_storage), renewer (edge.renewal.renewer), lease_ttl (s),
-- pass_interval (s). Returns the lease (for tests), or nil on workers that do not take part.
function _M.start(opts)
  if ngx.worker.id() ~= 0 then
    return nil
  end
  local lease = lease_module.new(opts.adapter, { key = LEASE_KEY, ttl = opts.lease_ttl })
  local next_pass = 0
  local tick

  local function schedule()
    local ok, err = ngx.timer.at(opts.lease_ttl / 3, tick)
    if not ok and not ngx.worker.exiting() then
      ngx.log(ngx.ERR, "edge: renewal: cannot schedule the next lease check: ", err)
    end
  end

  tick = function(premature)
    if premature or ngx.worker.exiting() then
      if lease:held() then
        lease:release()
      end
      return
    end
    local held, err = lease:hold()
    if err then
      ngx.log(ngx.WARN, "edge: renewal: the lease could not be checked: ", err)
    end
    metrics.set("edge_renewer", held and 1 or 0)
    if not held then
      opts.renewer.clear_report()
    end
    if held and ngx.now() >= next_pass then
      -- A worker told to exit stops the pass at the next name (it would hold up the shutdown).
      local ok, pass_err = pcall(opts.renewer.pass, opts.renewer, function()
        return not ngx.worker.exiting() and lease:keep()
      end)
      if not ok then
        ngx.log(ngx.ERR, "edge: renewal pass failed: ", pass_err)
      end
      ngx.update_time()
      next_pass = ngx.now() + opts.pass_interval * (0.8 + 0.4 * math.random())
    end
    if ngx.worker.exiting() then
      -- Told to exit during this tick: no timer can be scheduled now, so none would release it.
      if lease:held() then
        lease:release()
      end
      return
    end
    schedule()
  end

  local ok, err = ngx.timer.at(0, tick)
  if not ok then
    ngx.log(ngx.ERR, "edge: renewal: cannot start: ", err)
  end
  return lease
end

return _M
