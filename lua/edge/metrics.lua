-- Counters and gauges shared by all workers of an instance (lua_shared_dict edge_metrics),
-- exposed in the Prometheus text format on the status port.
local _M = {}

local HELP = {
  edge_handshakes_total = "TLS handshakes by how the certificate was chosen",
  edge_allow_verdicts_total = "allow_domain decisions by outcome",
  edge_domain_check_cache_total = "domain-check verdict cache lookups",
  edge_domain_check_requests_total = "requests to the domain-check endpoint by result",
  edge_orders_total = "ACME orders this instance started, or refused during a cool-off",
  edge_store_errors_total = "certificate store (Redis) errors seen by the edge",
  edge_renewals_total = "renewal decisions of this instance's renewer by outcome",
  edge_renewer = "1 on the instance holding the environment's renewal lease",
  edge_certificates_past_renew_at = "certificates past their renew-at time, not yet renewed (renewer only)",
  edge_certificates_near_expiry = "certificates within 7 days (or a tenth of their lifetime) of expiry (renewer only)",
  edge_certificate_soonest_expiry_seconds = "seconds until the soonest certificate expiry (renewer only)",
  edge_renewal_due = "names due for the renewer's attention now (renewer only)",
  edge_domains_queue_depth = "names waiting in the registration queue (the store's)",
  edge_domains = "names by state (the store's)",
  edge_domain_time_to_first_trusted_handshake_seconds = "time from a name's registration (or first handshake) to the first handshake served with its certificate",
  edge_domains_api_requests_total = "domains API requests by response status",
}

-- Metrics that are gauges (set, not counted); every other one is a counter.
local GAUGES = {
  edge_renewer = true,
  edge_certificates_past_renew_at = true,
  edge_certificates_near_expiry = true,
  edge_certificate_soonest_expiry_seconds = true,
  edge_renewal_due = true,
  edge_domains_queue_depth = true,
  edge_domains = true,
}

-- Histograms: their bucket bounds (seconds).
local HISTOGRAMS = {
  edge_domain_time_to_first_trusted_handshake_seconds = { 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400 },
}

local function dict()
  return ngx.shared.edge_metrics
end

-- The key of the counter `name` with one label, for inc_key (on hot paths, made once).
function _M.key(name, label, value)
  return name .. "\0" .. (label or "") .. "\0" .. (value or "")
end

-- Adds 1 to the counter with this key.
function _M.inc_key(key)
  local d = dict()
  if not d then
    return
  end
  local _, err = d:incr(key, 1, 0)
  if err then
    ngx.log(ngx.INFO, "edge: metric ", key:match("^[^%z]+"), " not counted: ", err)
  end
end

-- Adds 1 to the counter `name` with one label.
function _M.inc(name, label, value)
  _M.inc_key(_M.key(name, label, value))
end

-- Sets the gauge `name` (with one label, or none); nil removes it (an instance that stops
-- knowing the value).
function _M.set(name, value, label, label_value)
  local d = dict()
  if d then
    d:set(_M.key(name, label, label_value), value)
  end
end

-- Counts a value in the histogram `name`: its bucket counters, _sum and _count (Prometheus
-- cumulative buckets, le="+Inf" included).
function _M.observe(name, value)
  local d = dict()
  if not d then
    return
  end
  for _, bound in ipairs(HISTOGRAMS[name]) do
    if value <= bound then
      d:incr(_M.key(name .. "_bucket", "le", tostring(bound)), 1, 0)
    end
  end
  d:incr(_M.key(name .. "_bucket", "le", "+Inf"), 1, 0)
  d:incr(_M.key(name .. "_sum"), value, 0)
  d:incr(_M.key(name .. "_count"), 1, 0)
end

function _M.render()
  local d = dict()
  if not d then
    return ""
  end
  local by_name = {}
  for _, key in ipairs(d:get_keys(0)) do
    local series, label, value = key:match("^([^%z]+)%z([^%z]*)%z(.*)$")
    -- A histogram's series are grouped under its name.
    local name = series and (series:match("^(.+)_bucket$") or series:match("^(.+)_sum$") or series:match("^(.+)_count$"))
    name = HISTOGRAMS[name] and name or series
    if name then
      by_name[name] = by_name[name] or {}
      local labels = label ~= "" and ('{' .. label .. '="' .. value .. '"}') or ""
      table.insert(by_name[name], series .. labels .. " " .. tostring(d:get(key) or 0))
    end
  end
  local names = {}
  for name in pairs(by_name) do
    names[#names + 1] = name
  end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    out[#out + 1] = "# HELP " .. name .. " " .. (HELP[name] or name)
    out[#out + 1] = "# TYPE " .. name .. (GAUGES[name] and " gauge" or HISTOGRAMS[name] and " histogram" or " counter")
    table.sort(by_name[name])
    for _, line in ipairs(by_name[name]) do
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return _M
