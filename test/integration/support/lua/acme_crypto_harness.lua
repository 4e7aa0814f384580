-- Content handlers for acme-crypto.test.ts: each calls lua/edge/acme/crypto.lua and answers
-- JSON; binary values travel as base64url (our encoder is checked against Node's separately).
local cjson = require "cjson.safe"
local crypto = require "edge.acme.crypto"

local _M = {}

local function reply(t, status)
  ngx.status = status or 200
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

local function body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if not data then
    local file = ngx.req.get_body_file()
    if file then
      local f = assert(io.open(file, "rb"))
      data = f:read("*a")
      f:close()
    end
  end
  return data or ""
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function split(s)
  local out = {}
  for name in (s or ""):gmatch("[^,]+") do out[#out + 1] = name end
  return out
end

-- POST /key?kind=K&names=a,b: a new key; its JWK, thumbprint, alg, the signature of the body,
-- its PEM and the JWK of the key read back from it, and a CSR for names.
function _M.key()
  local args = ngx.req.get_uri_args()
  local message = body()
  local key, err = crypto.generate_key(args.kind)
  if not key then return reply({ err = err }, 500) end
  local sig, serr = crypto.sign(key, message)
  if not sig then return reply({ err = serr }, 500) end
  local pem = assert(crypto.key_to_pem(key))
  local back = assert(crypto.key_from_pem(pem))
  local csr, cerr = crypto.csr(key, split(args.names or "example.test"))
  if not csr then return reply({ err = cerr }, 500) end
  reply({
    kind = crypto.key_kind(key),
    alg = crypto.jws_alg(key),
    jwk = crypto.jwk(key),
    thumbprint = crypto.jwk_thumbprint(key),
    sig = crypto.base64url(sig),
    sig_len = #sig,
    pem = pem,
    pem_jwk = crypto.jwk(back),
    pem_kind = crypto.key_kind(back),
    csr = crypto.base64url(csr),
  })
end

-- POST /from_pem (a private key PEM): its JWK and a signature of "hello", or the error.
function _M.from_pem()
  local key, err = crypto.key_from_pem(body())
  if not key then return reply({ err = err, queue_empty = crypto.error_queue_empty() }) end
  reply({ jwk = crypto.jwk(key), alg = crypto.jws_alg(key), sig = crypto.base64url(assert(crypto.sign(key, "hello"))) })
end

-- POST /thumbprint (a JWK as JSON).
function _M.thumbprint()
  local jwk = cjson.decode(body())
  local tp, err = crypto.jwk_thumbprint_of(jwk)
  reply({ thumbprint = tp, err = err })
end

-- POST /not_after (a PEM chain).
function _M.not_after()
  local t, err = crypto.cert_not_after(body())
  reply({ not_after = t, err = err, queue_empty = crypto.error_queue_empty() })
end

-- GET /encodings?max=N: for every length 0..N, random bytes (hex), our base64url of them and
-- whether our decoder gives them back; the SHA-256 of each (hex); random(n)'s length.
function _M.encodings()
  local max = tonumber(ngx.req.get_uri_args().max) or 64
  local out = {}
  for n = 0, max do
    local bytes = assert(crypto.random(n))
    local enc = crypto.base64url(bytes)
    out[#out + 1] = {
      hex = hex(bytes), len = #bytes, b64 = enc,
      roundtrip = crypto.base64url_decode(enc) == bytes,
      sha256 = hex(assert(crypto.sha256(bytes))),
    }
  end
  local bad = {}
  for _, s in ipairs({ "a", "ab=", "a+b", "a/b", "ab cd", "abcde" }) do
    local v, err = crypto.base64url_decode(s)
    bad[#bad + 1] = { input = s, ok = v ~= nil, err = err }
  end
  reply({ items = out, bad = bad })
end

-- GET /bad: bad inputs and what follows them.
function _M.bad()
  local r = {}
  local key, err = crypto.key_from_pem("garbage")
  r.garbage = { ok = key ~= nil, err = err, queue_empty = crypto.error_queue_empty() }
  local good = assert(crypto.generate_key("ec-p256"))
  local back, berr = crypto.key_from_pem(assert(crypto.key_to_pem(good)))
  r.after_garbage = { ok = back ~= nil, err = berr, same = back ~= nil and crypto.jwk_thumbprint(back) == crypto.jwk_thumbprint(good) }
  local truncated = assert(crypto.key_to_pem(good)):sub(1, 80) .. "\n-----END PRIVATE KEY-----\n"
  local tkey, terr = crypto.key_from_pem(truncated)
  r.truncated = { ok = tkey ~= nil, err = terr, queue_empty = crypto.error_queue_empty() }
  local csr, cerr = crypto.csr(good, {})
  r.csr_empty = { ok = csr ~= nil, err = cerr }
  local csr2, cerr2 = crypto.csr(good, { "ok.example.test", "bad,name" })
  r.csr_bad_name = { ok = csr2 ~= nil, err = cerr2 }
  local k, kerr = crypto.generate_key("ec-p521")
  r.unknown_kind = { ok = k ~= nil, err = kerr }
  local s, serr = crypto.sign("not a key", "x")
  r.sign_not_key = { ok = s ~= nil, err = serr }
  local t, terr2 = crypto.cert_not_after("garbage")
  r.cert_garbage = { ok = t ~= nil, err = terr2, queue_empty = crypto.error_queue_empty() }
  r.openssl = string.format("0x%08x", crypto.openssl_version_num())
  reply(r)
end

-- GET /coexist: another library's plain cdefs of the same OpenSSL names (as lua-resty-openssl
-- has), then a second copy of our module (package.loaded cleared): all of it must work, and
-- keys pass between the copies.
function _M.coexist()
  local ffi = require "ffi"
  local foreign_ok, foreign_err = pcall(ffi.cdef, [[
    typedef struct evp_pkey_st EVP_PKEY;
    void EVP_PKEY_free(EVP_PKEY *pkey);
    int RAND_bytes(unsigned char *buf, int num);
    int EVP_PKEY_get_bits(const EVP_PKEY *pkey);
  ]])
  local first = crypto
  package.loaded["edge.acme.crypto"] = nil
  local ok, second = pcall(require, "edge.acme.crypto")
  package.loaded["edge.acme.crypto"] = first
  if not ok then return reply({ foreign_ok = foreign_ok, foreign_err = foreign_err, second_err = second }) end
  local key = assert(first.generate_key("ec-p256"))
  local sig = second.sign(key, "x")
  local buf = ffi.new("unsigned char[8]")
  reply({
    foreign_ok = foreign_ok, foreign_err = foreign_err,
    distinct_copies = first ~= second,
    same_thumbprint = second.jwk_thumbprint(key) == first.jwk_thumbprint(key),
    second_sig_len = sig and #sig,
    foreign_bits = ffi.C.EVP_PKEY_get_bits(key),
    foreign_rand = ffi.C.RAND_bytes(buf, 8),
  })
end

-- GET /long_cn: a CSR whose first name is too long for a CN (65 characters).
function _M.long_cn()
  local name = string.rep("a", 52) .. ".example.test" -- 65 characters
  local key = assert(crypto.generate_key())
  local csr, err = crypto.csr(key, { name, "short.example.test" })
  reply({ name = name, csr = csr and crypto.base64url(csr), err = err })
end

local function rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local status = f:read("*a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+)"))
end

-- GET /memory?n=N&p384_every=K&rsa_every=M (body: a certificate PEM): N iterations of
-- everything, success and failure paths, with an ec-p256 key, plus ec-p384 every K-th and
-- rsa-2048 every M-th iteration; the worker's VmRSS (kB) before and after, after a full GC.
function _M.memory()
  local args = ngx.req.get_uri_args()
  local n = tonumber(args.n) or 300
  local p384_every = tonumber(args.p384_every) or 1
  local rsa_every = tonumber(args.rsa_every) or 10
  local cert = body()
  local truncated = assert(crypto.key_to_pem(assert(crypto.generate_key()))):sub(1, 80) .. "\n-----END PRIVATE KEY-----\n"
  collectgarbage("collect")
  collectgarbage("collect")
  local before = rss_kb()
  local keys = 0
  for i = 1, n do
    local kinds = { "ec-p256" }
    if i % p384_every == 0 then kinds[#kinds + 1] = "ec-p384" end
    if i % rsa_every == 0 then kinds[#kinds + 1] = "rsa-2048" end
    for _, kind in ipairs(kinds) do
      local key = assert(crypto.generate_key(kind))
      assert(crypto.csr(key, { "a.example.test", "b.example.test", "*.c.example.test" }))
      assert(crypto.sign(key, "message " .. i))
      local back = assert(crypto.key_from_pem(assert(crypto.key_to_pem(key))))
      assert(crypto.jwk_thumbprint(back))
      assert(crypto.jws_alg(back))
      keys = keys + 1
    end
    assert(not crypto.key_from_pem("garbage"))
    assert(not crypto.key_from_pem(truncated))
    assert(not crypto.cert_not_after("garbage"))
    assert(not crypto.csr(assert(crypto.generate_key()), {}))
    assert(not crypto.generate_key("ec-p521"))
    assert(crypto.cert_not_after(cert))
    assert(crypto.random(32))
    assert(crypto.sha256("x"))
  end
  collectgarbage("collect")
  collectgarbage("collect")
  reply({ before = before, after = rss_kb(), keys = keys })
end

-- GET /bench?n=N: microseconds per operation.
function _M.bench()
  local n = tonumber(ngx.req.get_uri_args().n) or 200
  local function time(what, count, f)
    ngx.update_time()
    local t0 = ngx.now()
    for _ = 1, count do f() end
    ngx.update_time()
    return what, (ngx.now() - t0) * 1e6 / count
  end
  local out = {}
  local function add(what, us) out[what] = math.floor(us * 10 + 0.5) / 10 end
  local keys = {
    p256 = assert(crypto.generate_key("ec-p256")),
    p384 = assert(crypto.generate_key("ec-p384")),
    rsa = assert(crypto.generate_key("rsa-2048")),
  }
  local names = { "a.example.test", "b.example.test" }
  add(time("generate_key ec-p256", n, function() assert(crypto.generate_key("ec-p256")) end))
  add(time("generate_key ec-p384", n, function() assert(crypto.generate_key("ec-p384")) end))
  add(time("generate_key rsa-2048", math.max(3, math.floor(n / 20)), function() assert(crypto.generate_key("rsa-2048")) end))
  for label, key in pairs(keys) do
    add(time("sign " .. label, n, function() assert(crypto.sign(key, "payload.protected")) end))
    add(time("csr " .. label, n, function() assert(crypto.csr(key, names)) end))
    local pem = assert(crypto.key_to_pem(key))
    add(time("key_to_pem " .. label, n, function() assert(crypto.key_to_pem(key)) end))
    add(time("key_from_pem " .. label, n, function() assert(crypto.key_from_pem(pem)) end))
    add(time("jwk_thumbprint " .. label, n, function() assert(crypto.jwk_thumbprint(key)) end))
  end
  collectgarbage("collect")
  reply(out)
end

return _M
