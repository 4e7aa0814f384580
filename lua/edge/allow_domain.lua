-- lua-resty-auto-ssl's allow_domain: decides whether a (normalised) name may have a
-- certificate, and makes sure an ACME order is placed only when it should be:
--   * our own edge host names: never;
--   * the domain-check endpoint must say 200 (cached; errors refuse);
--   * a certificate already in the store needs no order: allowed;
--   * otherwise at most one order per name per cool-off window across all instances
--     (SET NX in the store). Let's Encrypt allows 5 failed validations per name per hour, and
--     lua-resty-auto-ssl by itself would retry on every handshake. A handshake that finds
--     another instance ordering the name waits for that certificate instead of ordering.
--     The order itself is placed here too (opts.issue), so auto-ssl finds the certificate in
--     the store.
--   * before an order, the DNS pre-check (opts.dns_precheck, edge.policy.dns_precheck): a name
--     that does not point at the edge gets no order (its validation would fail).
-- allow() returns true, or false and why (and, for dns_not_pointing, what the name resolves to).
local metrics = require "edge.metrics"
local domain_status = require "edge.store.domain_status"

local _M = {}
local mt = { __index = _M }

-- opts: domain_check (edge.domain_check), account (edge.acme.provider: ensure), issue
-- (edge.acme.provider.issue_cert: orders and stores a certificate), edge_hostnames (list),
-- order_cooloff (s), peer_wait (s), order_timeout (s: longest an order may take), dict,
-- dns_precheck (optional).
function _M.new(opts)
  local edge_hostnames = {}
  for _, name in ipairs(opts.edge_hostnames or {}) do
    edge_hostnames[name] = true
  end
  local self = {
    domain_check = opts.domain_check,
    account = opts.account,
    issue = opts.issue,
    edge_hostnames = edge_hostnames,
    order_cooloff = opts.order_cooloff or 900,
    peer_wait = opts.peer_wait or 30,
    order_timeout = opts.order_timeout or 90,
    dns_precheck = opts.dns_precheck,
    dict_name = opts.dict or "edge_cache",
  }
  return setmetatable(self, mt)
end

-- The store's cluster-wide order mark of a name.
local function order_key(domain)
  return "edge:order:" .. domain
end

local function refuse(reason, detail)
  metrics.inc("edge_allow_verdicts_total", "outcome", reason)
  return false, reason, detail
end

local function stored_certificate(storage, domain)
  local cert, err = storage:get_cert(domain)
  if err and not tostring(err):find("^redis") then
    -- The store answered, but the entry does not decode: treat it as absent (a new order replaces it).
    ngx.log(ngx.WARN, "edge: stored certificate of ", domain, " is unreadable, ignoring it: ", err)
    return nil
  end
  if err then
    metrics.inc("edge_store_errors_total")
    ngx.log(ngx.WARN, "edge: certificate store unavailable while checking ", domain, ": ", err)
    return nil, err
  end
  return cert and cert.fullchain_pem and cert.privkey_pem and cert or nil
end

-- Waits for another instance's order of this name to land in the store.
function _M.wait_for_peer(self, storage, domain, started)
  local deadline = math.min(ngx.now() + self.peer_wait, started + self.order_timeout)
  -- An issuance takes well under a second: look often at first, then back off.
  local step = 0.05
  while ngx.now() < deadline do
    ngx.sleep(step)
    step = math.min(step * 2, 0.5)
    local cert, err = stored_certificate(storage, domain)
    if err then
      return false
    end
    if cert then
      return true
    end
    -- The peer's order failed (order_failed marked it): no certificate is coming.
    if storage.adapter:get(order_key(domain)) == "failed" then
      return false
    end
  end
  return false
end

function _M.allow(self, domain, auto_ssl_instance, _, renewal)
  if self.edge_hostnames[domain] then
    return refuse("edge_hostname")
  end

  local verdict = self.domain_check:verdict(domain)
  if verdict ~= "allowed" then
    if verdict == "denied" and not renewal then
      -- lua-resty-auto-ssl logs this handshake's refusal ("domain not allowed - using
      -- fallback"); the rest of the deny window is answered by cached_denial, silently.
      self.domain_check:denial_log_due(domain)
    end
    return refuse(verdict)
  end

  local storage = auto_ssl_instance.storage
  local cache = ngx.shared[self.dict_name]
  if not renewal then
    local cert, err = stored_certificate(storage, domain)
    if err then
      return refuse("store_error")
    end
    if cert then
      metrics.inc("edge_allow_verdicts_total", "outcome", "allowed")
      return true
    end
    -- A recent order of this name failed (seen by this instance): refuse without asking the store.
    if cache:get("cooloff:" .. domain) then
      return refuse("cooloff")
    end
  end

  if self.dns_precheck and not renewal then
    local dns, detail = self.dns_precheck:check(domain)
    if dns == "not_pointing" then
      ngx.log(ngx.INFO, "edge: ", domain, " does not point at the edge (", detail, "): no order")
      return refuse("dns_not_pointing", detail)
    end
  end

  -- An order would follow: take the name's order mark, cluster-wide, for the cool-off window.
  local adapter = storage.adapter
  local now = ngx.now()
  local taken, err = adapter:add(order_key(domain), string.format("%.3f", now), self.order_cooloff)
  if err then
    metrics.inc("edge_store_errors_total")
    ngx.log(ngx.WARN, "edge: certificate store unavailable, not ordering ", domain, ": ", err)
    return refuse("store_error")
  end

  if taken then
    local ok, account_err = self.account:ensure(adapter)
    if not ok then
      ngx.log(ngx.ERR, "edge: no ACME account, not ordering ", domain, ": ", account_err)
      self:order_failed(storage, domain)
      return refuse("no_account")
    end
    metrics.inc("edge_orders_total", "result", "started")
    -- When the name was first seen (the API's registration sets it earlier): the start of its
    -- time to a first trusted handshake.
    domain_status.set_once(adapter, domain, "first_seen_at", string.format("%.3f", now))
    if not renewal and self.issue then
      -- Issued here, before lua-resty-auto-ssl looks in the store, which then serves it like any
      -- stored certificate (for a certificate it issued itself, auto-ssl waits 1 s before asking
      -- for an OCSP response; Let's Encrypt's certificates have no OCSP URL).
      local issued, issue_err = self.issue(auto_ssl_instance, domain)
      if not issued then
        ngx.log(ngx.WARN, "edge: ", issue_err)
        self:order_failed(storage, domain)
        return refuse("order_failed", issue_err)
      end
    end
    ngx.ctx.edge_order = domain
    metrics.inc("edge_allow_verdicts_total", "outcome", "allowed")
    return true
  end

  metrics.inc("edge_orders_total", "result", "cooloff")
  if renewal then
    -- The daily renewal scan tries again tomorrow.
    return refuse("cooloff")
  end

  local mark = adapter:get(order_key(domain))
  -- Deleted through the domains API moments ago: no order until its mark expires, or the name
  -- is registered again (which removes the mark: not remembered here, so it takes effect at once).
  if mark == "deleted" then
    return refuse("deleted")
  end
  local started = tonumber(mark or "")
  if started and now - started < self.order_timeout and self:wait_for_peer(storage, domain, started) then
    metrics.inc("edge_allow_verdicts_total", "outcome", "allowed")
    return true
  end
  self:remember_cooloff(storage, domain)
  return refuse("cooloff")
end

-- Whether the domain check's cached verdict denies a normalised name: the handshake then gets
-- the fallback certificate without lua-resty-auto-ssl, which would log a notice for each one.
-- Logs one line per name per deny window (none when auto-ssl's notice already said it).
function _M.cached_denial(self, domain)
  if self.domain_check:cached_verdict(domain) ~= "denied" then
    return false
  end
  if self.domain_check:denial_log_due(domain) then
    ngx.log(ngx.INFO, "edge: ", domain, " is not ours (cached domain-check verdict): fallback certificate,",
      " not logged again for ", self.domain_check.ttl.denied, " s")
  end
  return true
end

-- Remembers locally, until the store's mark expires, that this name is cooling off.
function _M.remember_cooloff(self, storage, domain)
  local remaining = storage.adapter:ttl(order_key(domain))
  if type(remaining) == "number" and remaining > 0 then
    ngx.shared[self.dict_name]:set("cooloff:" .. domain, true, remaining)
  end
end

-- Marks the name's order as failed for the rest of its window, so that no instance waits for it.
function _M.order_failed(self, storage, domain)
  metrics.inc("edge_orders_total", "result", "failed")
  storage.adapter:replace(order_key(domain), "failed")
  self:remember_cooloff(storage, domain)
end

-- Called after lua-resty-auto-ssl handled a handshake that missed its memory, with whether a
-- certificate was served. If this handshake placed an order, records how it ended (no
-- certificate: the order failed) and returns true.
function _M.after_handshake(self, auto_ssl_instance, served)
  local domain = ngx.ctx.edge_order
  if not domain then
    return false
  end
  ngx.ctx.edge_order = nil
  if served then
    metrics.inc("edge_orders_total", "result", "issued")
  else
    self:order_failed(auto_ssl_instance.storage, domain)
  end
  return true
end

return _M
