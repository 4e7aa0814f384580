-- JSON in and out for the test harnesses' content handlers.
local cjson = require "cjson.safe"

local _M = {}

-- Sends value as a JSON body.
function _M.reply(value)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(value))
end

-- nil as JSON null (a table field that is nil would be left out).
function _M.null(value)
  if value == nil then
    return ngx.null
  end
  return value
end

-- The request's JSON object body; answers 400 and ends the request if there is none.
function _M.body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  local decoded = data and cjson.decode(data)
  if type(decoded) ~= "table" then
    ngx.status = 400
    ngx.say("a JSON body is required")
    return ngx.exit(400)
  end
  return decoded
end

return _M
