-- One ACME account per environment, shared by every instance through the certificate store.
-- lua-resty-auto-ssl keeps the account on local disk, so each new pod would register a new
-- one (Let's Encrypt allows 10 per IP per 3 hours, and pods share NAT addresses). Before the
-- first order on an instance, this copies the environment's account from Redis into
-- dehydrated's account directory; if the environment has none yet, exactly one instance
-- registers it (dehydrated --register, under a cluster-wide mark) and stores it for the rest.
-- dehydrated reuses a seeded account only with all of account_key.pem, registration_info.json
-- and account_id.json present, and never registers a key it did not generate.
local cjson = require "cjson.safe"
local shm_lock = require "edge.shm_lock"
local shell_blocking = require "shell-games"

local _M = {}
local mt = { __index = _M }

local STORE_KEY = "edge:acme-account"
local REGISTERING_KEY = "edge:acme-account:registering"
local FILES = { "account_key.pem", "registration_info.json", "account_id.json" }

-- dehydrated names an account directory after the CA: urlbase64("<CA URL>\n").
function _M.ca_hash(ca)
  local encoded = ngx.encode_base64(ca .. "\n"):gsub("=+$", ""):gsub("%+", "-"):gsub("/", "_")
  return encoded
end

-- opts: account_dir (dehydrated's ACCOUNTDIR), ca, dehydrated (binary), config (dehydrated
-- config file), shell_execute (auto-ssl's, runs through sockproc), wait (s), dict (locks).
function _M.new(opts)
  local self = {
    dir = opts.account_dir .. "/" .. _M.ca_hash(opts.ca),
    dehydrated = opts.dehydrated,
    config = opts.config,
    shell_execute = opts.shell_execute,
    wait = opts.wait or 60,
    dict = opts.dict or "edge_cache",
  }
  return setmetatable(self, mt)
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local content = file:read("*a")
  file:close()
  return content
end

local function exists(path)
  local file = io.open(path, "rb")
  if file then
    file:close()
  end
  return file ~= nil
end

function _M.present(self)
  return exists(self.dir .. "/account_key.pem") and exists(self.dir .. "/registration_info.json")
end

function _M.read(self)
  local files = {}
  for _, name in ipairs(FILES) do
    files[name] = read_file(self.dir .. "/" .. name)
  end
  return files
end

function _M.write(self, files)
  local _, err = shell_blocking.capture_combined({ "mkdir", "-p", self.dir }, { umask = "0077" })
  if err then
    return nil, "cannot create " .. self.dir .. ": " .. tostring(err)
  end
  for _, name in ipairs(FILES) do
    if files[name] then
      local path = self.dir .. "/" .. name
      local file, open_err = io.open(path, "wb")
      if not file then
        return nil, "cannot write " .. path .. ": " .. tostring(open_err)
      end
      file:write(files[name])
      file:close()
      shell_blocking.capture_combined({ "chmod", "600", path })
    end
  end
  return true
end

-- Registers the environment's account (this instance won the mark). Returns its JSON.
function _M.register(self, adapter)
  local result, err = self.shell_execute({ self.dehydrated, "--register", "--accept-terms", "--config", self.config })
  if not result or result.status ~= 0 or not self:present() then
    return nil, "dehydrated --register failed: " .. tostring(err or (result and result.output))
  end
  local json = cjson.encode(self:read())
  local added, add_err = adapter:add(STORE_KEY, json)
  if add_err then
    return nil, add_err
  end
  if not added then
    -- Another instance stored one first (its mark had expired): use that one.
    return adapter:get(STORE_KEY)
  end
  ngx.log(ngx.NOTICE, "edge: registered the ACME account of this environment and stored it for every instance")
  return json
end

-- Makes sure this instance has the environment's account before an order. Returns true, or
-- nil and an error (then no order should be placed).
function _M.ensure(self, adapter)
  if self:present() then
    return true
  end
  local dict = ngx.shared[self.dict]
  local locked, lock_err = shm_lock.acquire(dict, "acme-account", self.wait + 30, self.wait + 30)
  if not locked then
    return nil, "acme account lock: " .. tostring(lock_err)
  end

  local ok, err = self:ensure_locked(adapter)
  shm_lock.release(dict, "acme-account")
  return ok, err
end

function _M.ensure_locked(self, adapter)
  if self:present() then
    return true
  end
  local stored, err = adapter:get(STORE_KEY)
  if err then
    return nil, err
  end
  if not stored then
    local won, mark_err = adapter:add(REGISTERING_KEY, ngx.worker.pid(), self.wait)
    if mark_err then
      return nil, mark_err
    end
    if won then
      stored, err = self:register(adapter)
      adapter:delete(REGISTERING_KEY)
      if not stored then
        return nil, err
      end
    else
      -- Another instance is registering: wait for its account.
      local deadline = ngx.now() + self.wait
      repeat
        ngx.sleep(0.5)
        stored, err = adapter:get(STORE_KEY)
      until stored or err or ngx.now() > deadline
      if not stored then
        return nil, err or "timed out waiting for another instance to register the ACME account"
      end
    end
  end

  local files = cjson.decode(stored)
  if type(files) ~= "table" or not files["account_key.pem"] then
    return nil, "the stored ACME account is not valid"
  end
  return self:write(files)
end

return _M
