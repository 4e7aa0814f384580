-- Normalises a TLS server name and refuses what cannot be a customer's hostname, without
-- asking anyone: no name, control characters, IP literals, a single label, over-long names,
-- bad labels, wildcards, non-ASCII (IDNs arrive as punycode "xn--" labels).
local _M = {}

local MAX_NAME = 253
local MAX_LABEL = 63

-- Returns the normalised name (lower case, no trailing dot), or nil and the reason.
-- The checks go from the most telling reason to the most general one: a name with a line feed
-- ("a.example\r\nHost: b.example") is a control character, not an IP literal for its colon.
function _M.normalize(name)
  if type(name) ~= "string" or name == "" then
    return nil, "no server name"
  end
  -- Bytes 0-31 and 127 (OpenSSL already refuses a NUL in SNI: "bad extension").
  if name:find("%c") then
    return nil, "control character"
  end
  if #name > MAX_NAME + 1 then
    return nil, "longer than 253 characters"
  end
  if name:find("*", 1, true) then
    return nil, "wildcard"
  end
  -- IPv6, bracketed or not: hex digits, colons and dots only ("::ffff:192.0.2.1" too). A colon
  -- anywhere else ("shop.example.com:443") is a character no hostname has (below).
  if name:find(":", 1, true) and (name:find("^%[[%x:%.]+%]$") or name:find("^[%x:%.]+$")) then
    return nil, "IP literal"
  end
  if name:find("[\128-\255]") then
    return nil, "not ASCII (internationalised names arrive as punycode)"
  end
  if name:find("[^%w%.%-]") then
    return nil, "character not allowed in a hostname"
  end

  name = name:lower()
  if name:sub(-1) == "." then
    name = name:sub(1, -2)
  end
  if #name > MAX_NAME then
    return nil, "longer than 253 characters"
  end
  if not name:find(".", 1, true) then
    return nil, "single label"
  end

  local last
  for label in (name .. "."):gmatch("([^.]*)%.") do
    if label == "" then
      return nil, "empty label"
    end
    if #label > MAX_LABEL then
      return nil, "label longer than 63 characters"
    end
    if label:sub(1, 1) == "-" or label:sub(-1) == "-" then
      return nil, "label starts or ends with a hyphen"
    end
    last = label
  end
  -- A numeric last label is an IPv4 address in some notation, never a public suffix.
  if last:find("^%d+$") then
    return nil, "IP literal"
  end
  return name
end

return _M
