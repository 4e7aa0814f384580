-- A minimal DNS client for the origin's addresses, on nginx cosockets (no DNS client ships with
-- Debian's Lua packages, and lua-resty-dns is OpenResty-only: one code path for both).
-- A queries (AAAA too when asked), over UDP, again over TCP when the answer is truncated; CNAME
-- chains followed within the answer, and the target asked for when the answer stops at a CNAME;
-- compressed names; the TTL of an answer is the smallest TTL of the records used. Every query
-- has a timeout; an answer must carry our query ID and our question, or it is not ours.
-- Runs in timers (it yields), never in the balancer.
local bit = require "bit"

local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local byte, char, sub, lower, format = string.byte, string.char, string.sub, string.lower, string.format
local concat, min, random = table.concat, math.min, math.random

local _M = {}

local TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
local CLASS_IN = 1
local FLAG_QR, FLAG_TC = 0x8000, 0x0200
local DEFAULT_TIMEOUT_MS = 2000
-- Resolvers stop at 8 to 16 hops; an origin behind more CNAMEs than this is misconfigured.
local MAX_CNAME_HOPS = 8
-- Compression pointers followed in one name: enough for any real message, and no loops.
local MAX_POINTERS = 32
local RCODES = { [1] = "format error", [2] = "server failure", [3] = "no such name", [4] = "not implemented", [5] = "refused" }
-- A datagram that is not the answer to our query (another ID or question): keep waiting.
local NOT_OURS = {}
local TRUNCATED = {}

local function encode_name(name)
  if #name == 0 or #name > 253 then
    return nil, "bad name length"
  end
  local parts = {}
  for label in name:gmatch("[^.]+") do
    if #label > 63 then
      return nil, "label longer than 63 characters"
    end
    parts[#parts + 1] = char(#label) .. label
  end
  parts[#parts + 1] = "\0"
  return concat(parts)
end

-- Header: our ID, recursion desired, one question.
local function build_query(id, qname_wire, qtype)
  return char(rshift(id, 8), band(id, 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
    .. qname_wire .. char(0, qtype, 0, CLASS_IN)
end

local function u16(msg, pos)
  local hi, lo = byte(msg, pos, pos + 1)
  if not lo then
    return nil
  end
  return bor(lshift(hi, 8), lo)
end

-- The name at pos (lower-case, no trailing dot) and the position after it in the message.
local function read_name(msg, pos)
  local labels = {}
  local after
  local pointers = 0
  while true do
    local len = byte(msg, pos)
    if not len then
      return nil, "truncated name"
    end
    if len == 0 then
      return concat(labels, "."), after or pos + 1
    end
    local kind = band(len, 0xc0)
    if kind == 0xc0 then
      local lo = byte(msg, pos + 1)
      if not lo then
        return nil, "truncated pointer"
      end
      pointers = pointers + 1
      if pointers > MAX_POINTERS then
        return nil, "compression loop"
      end
      after = after or pos + 2
      pos = bor(lshift(band(len, 0x3f), 8), lo) + 1
    elseif kind ~= 0 then
      return nil, "unknown label type"
    else
      if pos + len > #msg then
        return nil, "truncated label"
      end
      labels[#labels + 1] = lower(sub(msg, pos + 1, pos + len))
      pos = pos + len + 1
    end
  end
end

-- RFC 5952 text, as nginx writes IPv6 addresses: lower-case hex, the longest run of zero
-- groups (two or more) as "::".
local function ipv6_text(msg, pos)
  local groups = {}
  for i = 0, 7 do
    groups[i + 1] = u16(msg, pos + 2 * i)
  end
  local best_start, best_len, run_start, run_len = 0, 0, 0, 0
  for i = 1, 8 do
    if groups[i] == 0 then
      if run_len == 0 then
        run_start = i
      end
      run_len = run_len + 1
      if run_len > best_len then
        best_start, best_len = run_start, run_len
      end
    else
      run_len = 0
    end
  end
  local text = {}
  for i = 1, 8 do
    groups[i] = format("%x", groups[i])
  end
  if best_len < 2 then
    return concat(groups, ":")
  end
  for i = 1, best_start - 1 do
    text[#text + 1] = groups[i]
  end
  local head = concat(text, ":")
  text = {}
  for i = best_start + best_len, 8 do
    text[#text + 1] = groups[i]
  end
  return head .. "::" .. concat(text, ":")
end

-- Parses an answer to (id, qname, qtype). Returns { addresses = {owner = {..}}, address_ttl =
-- {owner = ttl}, cnames = {owner = {target, ttl}} }, or NOT_OURS, TRUNCATED, or nil and why.
local function parse_answer(msg, id, qname, qtype)
  if #msg < 12 then
    return NOT_OURS
  end
  local flags = u16(msg, 3)
  if u16(msg, 1) ~= id or band(flags, FLAG_QR) == 0 or u16(msg, 5) ~= 1 then
    return NOT_OURS
  end
  local name, pos = read_name(msg, 13)
  if not name or name ~= qname or u16(msg, pos) ~= qtype or u16(msg, pos + 2) ~= CLASS_IN then
    return NOT_OURS
  end
  pos = pos + 4
  if band(flags, FLAG_TC) ~= 0 then
    return TRUNCATED
  end
  local rcode = band(flags, 0x0f)
  if rcode ~= 0 then
    return nil, RCODES[rcode] or ("rcode " .. rcode)
  end

  local answer = { addresses = {}, address_ttl = {}, cnames = {} }
  for _ = 1, u16(msg, 7) do
    local owner, err
    owner, pos = read_name(msg, pos)
    if not owner then
      return nil, "bad answer record: " .. pos -- read_name's reason
    end
    local rtype, class, ttl_hi, ttl_lo, rdlen = u16(msg, pos), u16(msg, pos + 2), u16(msg, pos + 4), u16(msg, pos + 6), u16(msg, pos + 8)
    if not rdlen or pos + 9 + rdlen > #msg then
      return nil, "truncated answer record"
    end
    -- RFC 2181: a TTL with the top bit set counts as 0.
    local ttl = ttl_hi >= 0x8000 and 0 or ttl_hi * 65536 + ttl_lo
    local rdata = pos + 10
    if class == CLASS_IN then
      local address
      if rtype == TYPE_A and qtype == TYPE_A and rdlen == 4 then
        address = format("%d.%d.%d.%d", byte(msg, rdata, rdata + 3))
      elseif rtype == TYPE_AAAA and qtype == TYPE_AAAA and rdlen == 16 then
        address = "[" .. ipv6_text(msg, rdata) .. "]"
      elseif rtype == TYPE_CNAME then
        local target
        target, err = read_name(msg, rdata)
        if not target then
          return nil, "bad CNAME: " .. err
        end
        answer.cnames[owner] = { target = target, ttl = ttl }
      end
      if address then
        local list = answer.addresses[owner]
        if not list then
          list = {}
          answer.addresses[owner] = list
        end
        list[#list + 1] = address
        answer.address_ttl[owner] = min(answer.address_ttl[owner] or ttl, ttl)
      end
    end
    pos = rdata + rdlen
  end
  return answer
end

local function now_ms()
  ngx.update_time()
  return ngx.now() * 1000
end

local function query_tcp(host, port, query, id, qname, qtype, deadline)
  local sock = ngx.socket.tcp()
  sock:settimeout(math.max(1, deadline - now_ms()))
  local ok, err = sock:connect(host, port)
  if not ok then
    return nil, "tcp connect: " .. err
  end
  local answer
  ok, err = sock:send(char(rshift(#query, 8), band(#query, 0xff)) .. query)
  if ok then
    local len_bytes
    len_bytes, err = sock:receive(2)
    if len_bytes then
      local msg
      msg, err = sock:receive(u16(len_bytes, 1))
      if msg then
        answer, err = parse_answer(msg, id, qname, qtype)
        if answer == NOT_OURS or answer == TRUNCATED then
          answer, err = nil, "tcp: answer does not match the query"
        end
      end
    end
  end
  sock:close()
  if not answer then
    return nil, err
  end
  return answer
end

-- One question to the server: UDP, then TCP if the answer was truncated; within timeout ms.
local function query(host, port, qname, qtype, timeout)
  local qname_wire, err = encode_name(qname)
  if not qname_wire then
    return nil, err
  end
  local id = random(0, 0xffff)
  local q = build_query(id, qname_wire, qtype)
  local deadline = now_ms() + timeout

  local sock = ngx.socket.udp()
  sock:settimeout(timeout)
  local ok
  ok, err = sock:setpeername(host, port)
  if not ok then
    return nil, "udp: " .. err
  end
  ok, err = sock:send(q)
  if not ok then
    sock:close()
    return nil, "udp send: " .. err
  end
  while true do
    local msg
    msg, err = sock:receive()
    if not msg then
      sock:close()
      return nil, "udp: " .. err
    end
    local answer, parse_err = parse_answer(msg, id, qname, qtype)
    if answer ~= NOT_OURS then
      sock:close()
      if answer == TRUNCATED then
        return query_tcp(host, port, q, id, qname, qtype, deadline)
      end
      return answer, parse_err
    end
    -- A stray datagram (a late answer to an earlier query, or spoofed): wait on for ours.
    local remaining = deadline - now_ms()
    if remaining <= 0 then
      sock:close()
      return nil, "udp: timeout"
    end
    sock:settimeout(remaining)
  end
end

-- The addresses of name for qtype, following CNAMEs; and the smallest TTL of the chain.
local function lookup(host, port, name, qtype, timeout)
  local current, ttl, hops = name, math.huge, 0
  local chain = { name }
  while true do
    local answer, err = query(host, port, current, qtype, timeout)
    if not answer then
      return nil, err
    end
    local followed = false
    while true do
      local addresses = answer.addresses[current]
      if addresses then
        return addresses, min(ttl, answer.address_ttl[current]), chain
      end
      local cname = answer.cnames[current]
      if not cname then
        break
      end
      hops = hops + 1
      if hops > MAX_CNAME_HOPS then
        return nil, "more than " .. MAX_CNAME_HOPS .. " CNAMEs"
      end
      current, ttl, followed = cname.target, min(ttl, cname.ttl), true
      chain[#chain + 1] = current
    end
    if not followed then
      return nil, "no " .. (qtype == TYPE_A and "A" or "AAAA") .. " records for " .. current, chain
    end
    -- The answer stopped at a CNAME target without its addresses: ask for the target.
  end
end

-- Resolves name to its addresses. opts: server ("ip" or "ip:port", port 53 by default),
-- timeout (ms per query, default 2000), ipv6 (also AAAA records, default false).
-- Returns a list of addresses (IPv6 ones in brackets, as nginx takes them), the TTL in seconds
-- and the names followed (the name, then each CNAME target), or nil, why, and the names followed
-- before the failure (when the query got answers).
function _M.resolve(name, opts)
  local server = opts.server or ""
  local host, port = server:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = server:match("^([^:]+):(%d+)$")
  end
  host = host or server
  port = tonumber(port) or 53
  if host == "" then
    return nil, "no DNS server given"
  end
  local timeout = opts.timeout or DEFAULT_TIMEOUT_MS
  name = lower(name):gsub("%.$", "")

  local addresses, ttl, chain = lookup(host, port, name, TYPE_A, timeout)
  if not opts.ipv6 then
    return addresses, ttl, chain
  end
  local v6, v6_ttl, v6_chain = lookup(host, port, name, TYPE_AAAA, timeout)
  if not addresses then
    if v6 then
      return v6, v6_ttl, v6_chain
    end
    return nil, ttl, chain -- the A lookup's error
  end
  if v6 then
    for _, address in ipairs(v6) do
      addresses[#addresses + 1] = address
    end
    ttl = min(ttl, v6_ttl)
  end
  return addresses, ttl, chain
end

return _M
