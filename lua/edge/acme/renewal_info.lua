-- ACME Renewal Information (ARI, RFC 9773): the CA's suggested renewal window of a certificate.
--   fetch(client, cert_id) -> { window_start, window_end, retry_after, explanation_url }
--                           | false (the directory offers no renewalInfo) | nil, err
-- client: an edge.acme.client (its directory and timeout); cert_id: crypto.ari_cert_id(pem).
local cjson = require "cjson.safe"
local crypto = require "edge.acme.crypto"
local parse_retry_after = require("edge.acme.client").parse_retry_after

local _M = {}

-- Unix time of an RFC 3339 date-time ("2026-12-01T04:05:06Z", fractions and offsets allowed), or nil.
function _M.parse_rfc3339(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac, zone = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if not y then return nil end
  local offset = 0
  if zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  local t = crypto.days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) + (tonumber("0" .. frac) or 0)
  return t - offset
end

function _M.fetch(client, cert_id)
  local dir, err = client:directory()
  if not dir then
    return nil, err
  end
  if type(dir.renewalInfo) ~= "string" then
    return false
  end
  local url = dir.renewalInfo:gsub("/$", "") .. "/" .. cert_id
  local res
  res, err = client:_http("GET", url, { Accept = "application/json" })
  if not res then
    return nil, "renewalInfo: " .. err
  end
  if res.status ~= 200 then
    return nil, "renewalInfo: HTTP " .. res.status .. " for " .. cert_id
  end
  local doc = cjson.decode(res.body or "")
  local window = type(doc) == "table" and type(doc.suggestedWindow) == "table" and doc.suggestedWindow or {}
  local window_start, window_end = _M.parse_rfc3339(window.start), _M.parse_rfc3339(window["end"])
  if not window_start or not window_end or window_end < window_start then
    return nil, "renewalInfo: no valid suggestedWindow for " .. cert_id
  end
  return {
    window_start = window_start,
    window_end = window_end,
    retry_after = parse_retry_after(res.headers["retry-after"]),
    explanation_url = doc.explanationURL,
  }
end

return _M
