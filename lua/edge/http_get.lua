-- A minimal HTTP/1.1 GET on nginx cosockets that returns the status code: TLS with
-- certificate and host name verification, timeouts, keepalive. The domain-check endpoint
-- answers with a status; its body is read (up to a limit) only to keep the connection usable.
-- Needs nothing beyond the lua-nginx-module.
local _M = {}

local MAX_BODY = 64 * 1024

-- Splits "https://host:port/path?query" into its parts, or returns nil and why.
function _M.parse_url(url)
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then
    return nil, "not an http(s) URL: " .. url
  end
  local authority, path = rest:match("^([^/?#]+)([^#]*)")
  if not authority then
    return nil, "no host in URL: " .. url
  end
  local host, port = authority:match("^(.-):(%d+)$")
  host = host or authority
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if path == "" or path:sub(1, 1) == "?" then
    path = "/" .. path
  end
  return { scheme = scheme, host = host, port = port, authority = authority, path = path }
end

local function read_headers(sock)
  local headers = {}
  while true do
    local line, err = sock:receive("*l")
    if not line then
      return nil, err
    end
    if line == "" then
      return headers
    end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      headers[name:lower()] = value
    end
  end
end

-- Reads the body so the connection can be reused; returns false when it cannot be.
local function drain_body(sock, headers)
  local length = tonumber(headers["content-length"] or "")
  if length then
    if length > MAX_BODY then
      return false
    end
    return length == 0 or sock:receive(length) ~= nil
  end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local total = 0
    while true do
      local size_line = sock:receive("*l")
      local size = size_line and tonumber(size_line:match("^%x+"), 16)
      if not size then
        return false
      end
      total = total + size
      if total > MAX_BODY or not sock:receive(size + 2) then
        return false
      end
      if size == 0 then
        return true
      end
    end
  end
  return false -- delimited by close
end

-- opts: timeout (ms), ssl_verify (default true), keepalive_timeout (ms), pool_size.
-- Returns the status code, or nil and an error.
function _M.status(url, opts)
  local u, parse_err = _M.parse_url(url)
  if not u then
    return nil, parse_err
  end
  local sock = ngx.socket.tcp()
  sock:settimeouts(opts.timeout, opts.timeout, opts.timeout)
  local ok, err = sock:connect(u.host, u.port, { pool = u.scheme .. "://" .. u.authority, pool_size = opts.pool_size or 16 })
  if not ok then
    return nil, "connect: " .. tostring(err)
  end
  if u.scheme == "https" and sock:getreusedtimes() == 0 then
    ok, err = sock:sslhandshake(nil, u.host, opts.ssl_verify ~= false)
    if not ok then
      sock:close()
      return nil, "TLS: " .. tostring(err)
    end
  end

  local request = "GET " .. u.path .. " HTTP/1.1\r\nHost: " .. u.authority
    .. "\r\nUser-Agent: custom-domain-edge\r\nAccept: */*\r\n\r\n"
  ok, err = sock:send(request)
  if not ok then
    sock:close()
    return nil, "send: " .. tostring(err)
  end
  local status_line
  status_line, err = sock:receive("*l")
  local status = status_line and tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then
    sock:close()
    return nil, "bad response: " .. tostring(err or status_line)
  end
  local headers, header_err = read_headers(sock)
  if not headers then
    sock:close()
    return nil, "headers: " .. tostring(header_err)
  end
  if (headers["connection"] or ""):lower() ~= "close" and drain_body(sock, headers) then
    sock:setkeepalive(opts.keepalive_timeout or 60000, opts.pool_size or 16)
  else
    sock:close()
  end
  return status
end

return _M
