-- A small HTTP/1.1 client on nginx cosockets: TLS with certificate and host name verification
-- (SNI; the trust store is lua_ssl_trusted_certificate), keepalive pools, Content-Length,
-- chunked and close-delimited bodies, and one time limit for the whole exchange (connect, TLS,
-- send and every read), so a server that accepts and never answers costs at most the timeout.
-- request() is the general call (the ACME client uses it); status() is the GET the
-- domain-check endpoint needs: it returns the status code and reads the body (up to a limit)
-- only to keep the connection usable. Needs nothing beyond the lua-nginx-module. A host name
-- is resolved by nginx's `resolver`; nginx checks a certificate's DNS names only (not IP
-- addresses), so a verified https URL must name its host.
local _M = {}

local MAX_STATUS_BODY = 64 * 1024
local DEFAULT_MAX_BODY = 1024 * 1024
local DEFAULT_TIMEOUT = 5000

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

-- The socket's time limit for its next operation: what is left until the deadline.
local function arm(sock, deadline)
  ngx.update_time()
  local left = (deadline - ngx.now()) * 1000
  if left <= 0 then
    return false
  end
  sock:settimeout(math.max(1, math.floor(left)))
  return true
end

local function read_headers(sock, deadline)
  local headers = {}
  while true do
    if not arm(sock, deadline) then
      return nil, "timeout"
    end
    local line, err = sock:receive("*l")
    if not line then
      return nil, err
    end
    if line == "" then
      return headers
    end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      -- Repeated headers (Link) are joined, as RFC 9110 allows for list-valued fields.
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
end

-- Reads the body. Returns body, reusable (whether the connection can go back to the pool);
-- or nil, err, too_large.
local function read_body(sock, headers, deadline, max_body)
  local length = tonumber(headers["content-length"] or "")
  if length then
    if length > max_body then
      return nil, "body larger than " .. max_body .. " bytes", true
    end
    if length == 0 then
      return "", true
    end
    if not arm(sock, deadline) then
      return nil, "timeout"
    end
    local data, err = sock:receive(length)
    if not data then
      return nil, err
    end
    return data, true
  end
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      if not arm(sock, deadline) then
        return nil, "timeout"
      end
      local size_line, err = sock:receive("*l")
      local size = size_line and tonumber(size_line:match("^%x+"), 16)
      if not size then
        return nil, "bad chunk: " .. tostring(err or size_line)
      end
      total = total + size
      if total > max_body then
        return nil, "body larger than " .. max_body .. " bytes", true
      end
      if size == 0 then
        -- Trailers (if any) up to the empty line.
        repeat
          if not arm(sock, deadline) then
            return nil, "timeout"
          end
          local trailer, trailer_err = sock:receive("*l")
          if not trailer then
            return nil, trailer_err
          end
        until trailer == ""
        return table.concat(parts), true
      end
      if not arm(sock, deadline) then
        return nil, "timeout"
      end
      local chunk, chunk_err = sock:receive(size + 2)
      if not chunk then
        return nil, chunk_err
      end
      parts[#parts + 1] = chunk:sub(1, size)
    end
  end
  -- Delimited by close.
  local parts, total = {}, 0
  while true do
    if not arm(sock, deadline) then
      return nil, "timeout"
    end
    local data, err, partial = sock:receive(8192)
    local piece = data or partial
    if piece and #piece > 0 then
      total = total + #piece
      if total > max_body then
        return nil, "body larger than " .. max_body .. " bytes", true
      end
      parts[#parts + 1] = piece
    end
    if not data then
      if err == "closed" then
        return table.concat(parts), false
      end
      return nil, err
    end
  end
end

local function exchange(method, u, opts, deadline, pool)
  local sock = ngx.socket.tcp()
  if not arm(sock, deadline) then
    return nil, "timeout"
  end
  local ok, err = sock:connect(u.host, u.port, { pool = pool, pool_size = opts.pool_size or 16 })
  if not ok then
    return nil, "connect: " .. tostring(err)
  end
  local reused = sock:getreusedtimes() > 0
  if u.scheme == "https" and not reused then
    if not arm(sock, deadline) then
      sock:close()
      return nil, "TLS: timeout"
    end
    ok, err = sock:sslhandshake(nil, u.host, opts.ssl_verify ~= false)
    if not ok then
      sock:close()
      return nil, "TLS: " .. tostring(err)
    end
  end

  local lines = { method .. " " .. u.path .. " HTTP/1.1", "Host: " .. u.authority }
  local has = {}
  for name, value in pairs(opts.headers or {}) do
    has[name:lower()] = true
    lines[#lines + 1] = name .. ": " .. value
  end
  if not has["user-agent"] then
    lines[#lines + 1] = "User-Agent: custom-domain-edge"
  end
  if not has["accept"] then
    lines[#lines + 1] = "Accept: */*"
  end
  local body = opts.body
  if body or method == "POST" or method == "PUT" then
    lines[#lines + 1] = "Content-Length: " .. #(body or "")
  end
  local request = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
  if not arm(sock, deadline) then
    sock:close()
    return nil, "send: timeout"
  end
  ok, err = sock:send(request)
  if not ok then
    sock:close()
    return nil, "send: " .. tostring(err), reused
  end
  if not arm(sock, deadline) then
    sock:close()
    return nil, "timeout"
  end
  local status_line
  status_line, err = sock:receive("*l")
  local status = status_line and tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then
    sock:close()
    -- A pooled connection the server closed meanwhile: nothing was answered, try a fresh one.
    return nil, "bad response: " .. tostring(err or status_line), reused and not status_line
  end
  local headers, header_err = read_headers(sock, deadline)
  if not headers then
    sock:close()
    return nil, "headers: " .. tostring(header_err)
  end

  local res = { status = status, headers = headers, reused = reused }
  local no_body = method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200)
  local reusable
  if no_body then
    res.body, reusable = "", true
  elseif opts.discard_body and not tonumber(headers["content-length"] or "")
    and not (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    -- Only the status is wanted, and the body ends with the connection: do not wait for it.
    res.body, reusable = nil, false
  else
    local read_err, too_large
    res.body, read_err, too_large = read_body(sock, headers, deadline, opts.max_body or DEFAULT_MAX_BODY)
    if res.body then
      reusable = read_err
    elseif opts.discard_body and too_large then
      reusable = false
    else
      sock:close()
      return nil, "body: " .. tostring(read_err)
    end
  end
  if reusable and (headers["connection"] or ""):lower() ~= "close" then
    sock:setkeepalive(opts.keepalive_timeout or 60000, opts.pool_size or 16)
  else
    sock:close()
  end
  return res
end

-- method: "GET", "HEAD", "POST", ...; url: http(s)://...
-- opts: headers (table name -> value), body (string), timeout (ms, for the whole exchange;
-- default 5000), ssl_verify (default true), pool (name of the keepalive pool; default per
-- scheme://authority and verification), pool_size (16), keepalive_timeout (ms, 60000),
-- max_body (bytes, 1 MiB; a larger body is an error).
-- Returns { status = <number>, headers = { [lower-case name] = value }, body = <string>,
-- reused = <whether the connection came from the keepalive pool> }, or nil and an error.
function _M.request(method, url, opts)
  opts = opts or {}
  local u, parse_err = _M.parse_url(url)
  if not u then
    return nil, parse_err
  end
  ngx.update_time()
  local deadline = ngx.now() + (opts.timeout or DEFAULT_TIMEOUT) / 1000
  local pool = opts.pool or (u.scheme .. "://" .. u.authority .. (opts.ssl_verify == false and "#noverify" or ""))
  local res, err, retry = exchange(method, u, opts, deadline, pool)
  if not res and retry then
    res, err = exchange(method, u, opts, deadline, pool)
  end
  if not res and err and err:find("timeout", 1, true) then
    err = err .. " (after " .. (opts.timeout or DEFAULT_TIMEOUT) .. " ms)"
  end
  return res, err
end

-- opts: timeout (ms), ssl_verify (default true), keepalive_timeout (ms), pool_size.
-- Returns the status code, or nil and an error. The body is read (up to 64 KiB) only so the
-- connection can be reused; a larger one, or one delimited by close, is not waited for.
function _M.status(url, opts)
  local res, err = _M.request("GET", url, {
    timeout = opts.timeout,
    ssl_verify = opts.ssl_verify,
    keepalive_timeout = opts.keepalive_timeout,
    pool_size = opts.pool_size,
    max_body = MAX_STATUS_BODY,
    discard_body = true,
  })
  if not res then
    return nil, err
  end
  return res.status
end

return _M
