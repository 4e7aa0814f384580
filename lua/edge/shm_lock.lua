-- A lock between the workers of one instance, in a shared dict: add() succeeds for one
-- holder; the others poll until it is released or expires. (resty.lock is not on every
-- nginx; this is all we need of it.)
local _M = {}

-- Returns true once the lock is held, or nil and "timeout" / the dict's error.
function _M.acquire(dict, key, exptime, timeout)
  local deadline = ngx.now() + timeout
  local step = 0.005
  while true do
    local ok, err = dict:add("lock:" .. key, true, exptime)
    if ok then
      return true
    end
    if err ~= "exists" then
      return nil, err
    end
    if ngx.now() >= deadline then
      return nil, "timeout"
    end
    ngx.sleep(step)
    step = math.min(step * 2, 0.1)
  end
end

function _M.release(dict, key)
  dict:delete("lock:" .. key)
end

return _M
