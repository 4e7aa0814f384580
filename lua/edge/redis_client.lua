-- A minimal Redis (RESP2) client on nginx cosockets: connect (optionally TLS, verified),
-- pooled keepalive, one command at a time. It needs nothing beyond the lua-nginx-module, so
-- the edge runs on OpenResty and on a distribution's nginx alike.
local _M = {}
local mt = { __index = _M }

-- opts: host, port, ssl, ssl_verify, server_name, pool, pool_size, connect_timeout, read_timeout (ms).
function _M.connect(opts)
  local sock = ngx.socket.tcp()
  sock:settimeouts(opts.connect_timeout, opts.read_timeout, opts.read_timeout)
  local ok, err = sock:connect(opts.host, opts.port, { pool = opts.pool, pool_size = opts.pool_size })
  if not ok then
    return nil, err
  end
  if opts.ssl and sock:getreusedtimes() == 0 then
    ok, err = sock:sslhandshake(nil, opts.server_name, opts.ssl_verify)
    if not ok then
      sock:close()
      return nil, "TLS handshake failed: " .. tostring(err)
    end
  end
  return setmetatable({ sock = sock }, mt)
end

-- Whether this connection came from the pool (and so is already authenticated).
function _M.reused(self)
  return self.sock:getreusedtimes() > 0
end

local function read_reply(sock)
  local line, err = sock:receive("*l")
  if not line then
    return nil, err
  end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then
    return rest
  elseif kind == "-" then
    return nil, rest
  elseif kind == ":" then
    return tonumber(rest)
  elseif kind == "$" then
    local size = tonumber(rest)
    if size < 0 then
      return ngx.null
    end
    local data, data_err = sock:receive(size + 2)
    if not data then
      return nil, data_err
    end
    return data:sub(1, size)
  elseif kind == "*" then
    local count = tonumber(rest)
    if count < 0 then
      return ngx.null
    end
    local items = {}
    for i = 1, count do
      local item, item_err = read_reply(sock)
      if item == nil then
        return nil, item_err
      end
      items[i] = item
    end
    return items
  end
  return nil, "unexpected reply from Redis: " .. line:sub(1, 32)
end

-- Sends one command (each argument a string or number) and returns its reply: a string, a
-- number, a table, or ngx.null for a nil reply. On a Redis error or a socket error, returns nil
-- and the message; the caller should then close the connection.
function _M.command(self, ...)
  local args = { ... }
  local parts = { "*" .. #args .. "\r\n" }
  for i = 1, #args do
    local arg = tostring(args[i])
    parts[#parts + 1] = "$" .. #arg .. "\r\n" .. arg .. "\r\n"
  end
  local _, err = self.sock:send(table.concat(parts))
  if err then
    return nil, err
  end
  return read_reply(self.sock)
end

function _M.keepalive(self, timeout, pool_size)
  return self.sock:setkeepalive(timeout, pool_size)
end

function _M.close(self)
  return self.sock:close()
end

return _M
