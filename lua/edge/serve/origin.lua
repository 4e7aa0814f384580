-- The origin's addresses, and the balancer of nginx.conf's `upstream edge_origin`, whose
-- `keepalive` pool then reuses connections per address. Each worker resolves the origin's name
-- in a background timer (edge.serve.dns_resolver) at the answer's TTL, at least every
-- max_resolve_interval seconds and at most every second; it keeps its last good addresses
-- when resolution fails, and stores them in the shared dict, where a worker that has not
-- resolved yet finds them and the readiness check sees them. The balancer runs on every
-- proxied request and cannot yield: it only picks among the worker's addresses.
local balancer = require "ngx.balancer"
local dns = require "edge.serve.dns_resolver"

local concat, min, max = table.concat, math.min, math.max

local _M = {}

local DICT = "edge_cache"
local MIN_INTERVAL_S = 1
-- After a failed resolution the last good addresses keep serving, so there is no hurry: ask
-- again soon enough to follow a change, without pressing a resolver that is struggling.
local RETRY_WITH_ADDRESSES_S = 5
-- Without any address every request fails: ask again at the floor.
local RETRY_WITHOUT_ADDRESSES_S = 1
-- As nginx's own round robin does (max_fails=1 fail_timeout=10s): an address a try failed on
-- is skipped for this long, unless every address is. Like nginx, a pooled connection found
-- dead counts too (the balancer cannot tell it from a refused connect).
local DOWN_SECONDS = 10
-- Tries on other addresses after a failed one; proxy_next_upstream_tries bounds the total.
local MAX_MORE_TRIES = 2
-- nginx's NGX_BUSY from a balancer is "no live upstreams": a 502 (ngx.ERROR would be a 500).
local NGX_BUSY = -3

local conf
local shm_key
-- This worker's addresses ("192.0.2.1", "[2001:db8::1]"), nil until known.
local peers
local peer_count = 0
local cursor = 0
-- address -> ngx.now() until which the balancer skips it.
local down_until = {}
local resolve_failing = false
local warned_no_peers = false

local function ip_literal(host)
  if host:match("^%d+%.%d+%.%d+%.%d+$") then
    return host
  end
  if host:find(":", 1, true) then
    return host:sub(1, 1) == "[" and host or "[" .. host .. "]"
  end
end

-- origin: the table rendered into nginx.conf (charts/nginx-conf.ts): host, port, tls,
-- resolver ("ip:port"), max_resolve_interval (s); optional resolve_timeout (ms), ipv6.
function _M.init(origin)
  assert(origin and origin.host and origin.port, "edge: origin.host and origin.port are required")
  assert(ngx.shared[DICT], "edge: lua_shared_dict " .. DICT .. " is required")
  local host = origin.host:lower()
  local literal = ip_literal(host)
  assert(literal or origin.resolver, "edge: origin.resolver is required to resolve " .. host)
  conf = {
    host = host,
    port = origin.port,
    literal = literal,
    dns = { server = origin.resolver, timeout = origin.resolve_timeout, ipv6 = origin.ipv6 },
    max_interval = max(MIN_INTERVAL_S, origin.max_resolve_interval or 30),
  }
  shm_key = "origin:addresses:" .. host
end

-- Replaces the worker's addresses (a sorted list), keeping the marks of those still in it.
local function set_peers(addresses)
  local text = concat(addresses, " ")
  if peers and concat(peers, " ") == text then
    return
  end
  ngx.log(ngx.INFO, "edge: origin ", conf.host, " at ", text)
  local marks = {}
  for _, address in ipairs(addresses) do
    marks[address] = down_until[address]
  end
  peers, peer_count, down_until = addresses, #addresses, marks
  cursor = cursor % peer_count
end

local function publish()
  local ok, err = ngx.shared[DICT]:set(shm_key, concat(peers, " "))
  if not ok then
    ngx.log(ngx.WARN, "edge: origin addresses not shared: ", err)
  end
end

-- Resolves once; returns the seconds until the next resolution.
local function refresh()
  local addresses, ttl = dns.resolve(conf.host, conf.dns)
  if not addresses then
    if not resolve_failing then
      resolve_failing = true
      ngx.log(ngx.WARN, "edge: resolving origin ", conf.host, " failed (", ttl, "); ",
        peers and ("keeping " .. concat(peers, " ")) or "no address yet: 502 until resolved")
    end
    return peers and min(RETRY_WITH_ADDRESSES_S, conf.max_interval) or RETRY_WITHOUT_ADDRESSES_S
  end
  if resolve_failing then
    resolve_failing = false
    ngx.log(ngx.NOTICE, "edge: resolving origin ", conf.host, " works again")
  end
  table.sort(addresses)
  set_peers(addresses)
  publish()
  return max(MIN_INTERVAL_S, min(ttl, conf.max_interval))
end

local refresh_timer
refresh_timer = function(premature)
  if premature then
    return
  end
  local ok, delay = pcall(refresh)
  if not ok then
    ngx.log(ngx.ERR, "edge: resolving origin ", conf.host, ": ", delay)
    delay = RETRY_WITH_ADDRESSES_S
  end
  local scheduled, err = ngx.timer.at(delay, refresh_timer)
  if not scheduled and err ~= "process exiting" then
    ngx.log(ngx.ERR, "edge: origin resolution stopped: ", err)
  end
end

function _M.init_worker()
  if conf.literal then
    set_peers({ conf.literal })
    publish()
    return
  end
  -- Unpredictable DNS query IDs, different in every worker.
  math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
  local ok, err = ngx.timer.at(0, refresh_timer)
  if not ok then
    ngx.log(ngx.ERR, "edge: origin resolution not started: ", err)
  end
end

-- In a worker's first moments, before its own first resolution: another worker's addresses.
local function adopt_shared_peers()
  local stored = ngx.shared[DICT]:get(shm_key)
  if not stored then
    return false
  end
  local addresses = {}
  for address in stored:gmatch("%S+") do
    addresses[#addresses + 1] = address
  end
  if #addresses == 0 then
    return false
  end
  set_peers(addresses)
  return true
end

-- Round robin over the addresses not marked down (all of them when every one is).
local function pick()
  local n = peer_count
  local now
  for _ = 1, n do
    cursor = cursor % n + 1
    local address = peers[cursor]
    local skip_until = down_until[address]
    if not skip_until then
      return address
    end
    now = now or ngx.now()
    if skip_until <= now then
      down_until[address] = nil
      return address
    end
  end
  cursor = cursor % n + 1
  return peers[cursor]
end

-- The address of this request's failed try: the last one in $upstream_addr. Read only on a
-- retry, so a first try keeps no per-request state.
local function failed_address()
  local tried = ngx.var.upstream_addr
  local last
  if tried then
    for address in tried:gmatch("([^%s,]+):%d+") do
      last = address
    end
  end
  return last
end

-- balancer_by_lua of `upstream edge_origin`.
function _M.balance()
  if not peers and not adopt_shared_peers() then
    if not warned_no_peers then
      warned_no_peers = true
      ngx.log(ngx.ERR, "edge: no address for origin ", conf.host, " yet: answering 502")
    end
    return ngx.exit(NGX_BUSY)
  end
  if balancer.get_last_failure() == nil then
    -- Let nginx retry (proxy_next_upstream) on other addresses; one address gets no more
    -- tries, except the one nginx itself gives a failed cached keepalive connection.
    if peer_count > 1 then
      balancer.set_more_tries(min(peer_count - 1, MAX_MORE_TRIES))
    end
  elseif peer_count > 1 then
    local address = failed_address()
    if address then
      down_until[address] = ngx.now() + DOWN_SECONDS
    end
  end
  local address = pick()
  local ok, err = balancer.set_current_peer(address, conf.port)
  if not ok then
    ngx.log(ngx.ERR, "edge: origin address ", address, " refused by nginx: ", err)
    return ngx.exit(ngx.ERROR)
  end
end

-- Whether any worker has the origin's addresses (the status port's /ready).
function _M.ready()
  return conf.literal ~= nil or ngx.shared[DICT]:get(shm_key) ~= nil
end

-- This worker's addresses (a copy; for status pages and tests).
function _M.addresses()
  local copy = {}
  for i = 1, peer_count do
    copy[i] = peers[i]
  end
  return copy
end

return _M
