-- A stand-in for lua-resty-auto-ssl's storage wrapper (NOT auto-ssl): get_cert and set_cert over
-- our real storage adapter, with auto-ssl's JSON entry, for harnesses that run our Lua without
-- lua-resty-auto-ssl. on_get(domain), if given, is told of every get_cert (tests count reads).
local cjson = require "cjson.safe"

local _M = {}

function _M.new(adapter, on_get)
  local storage = { adapter = adapter }
  function storage.get_cert(self, domain)
    if on_get then
      on_get(domain)
    end
    local json, err = self.adapter:get(domain .. ":latest")
    if err then
      return nil, err
    end
    if not json then
      return nil
    end
    local data, json_err = cjson.decode(json)
    if not data then
      return nil, json_err
    end
    return data
  end
  function storage.set_cert(self, domain, fullchain_pem, privkey_pem, cert_pem, expiry)
    return self.adapter:set(domain .. ":latest", cjson.encode({
      fullchain_pem = fullchain_pem, privkey_pem = privkey_pem, cert_pem = cert_pem, expiry = expiry,
    }))
  end
  return storage
end

return _M
