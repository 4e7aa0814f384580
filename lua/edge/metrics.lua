-- Counters shared by all workers of an instance (lua_shared_dict edge_metrics), exposed in the
-- Prometheus text format on the status port.
local _M = {}

local HELP = {
  edge_handshakes_total = "TLS handshakes by how the certificate was chosen",
  edge_allow_verdicts_total = "allow_domain decisions by outcome",
  edge_domain_check_cache_total = "domain-check verdict cache lookups",
  edge_domain_check_requests_total = "requests to the domain-check endpoint by result",
  edge_orders_total = "ACME orders this instance started, or refused during a cool-off",
  edge_store_errors_total = "certificate store (Redis) errors seen by the edge",
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

function _M.render()
  local d = dict()
  if not d then
    return ""
  end
  local by_name = {}
  for _, key in ipairs(d:get_keys(0)) do
    local name, label, value = key:match("^([^%z]+)%z([^%z]*)%z(.*)$")
    if name then
      by_name[name] = by_name[name] or {}
      local labels = label ~= "" and ('{' .. label .. '="' .. value .. '"}') or ""
      table.insert(by_name[name], name .. labels .. " " .. tostring(d:get(key) or 0))
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
    out[#out + 1] = "# TYPE " .. name .. " counter"
    table.sort(by_name[name])
    for _, line in ipairs(by_name[name]) do
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n") .. "\n"
end

return _M
