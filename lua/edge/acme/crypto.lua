-- The crypto our ACME client (RFC 8555) needs: account and certificate keys, JWK and JWS
-- signatures (RFC 7515/7517/7518/7638), CSRs and certificate expiry, through LuaJIT FFI to the
-- libcrypto (OpenSSL 3) nginx already links. Every OpenSSL object is freed on every path:
-- keys we hand out carry ffi.gc(EVP_PKEY_free), everything else is freed before we return.
-- Failures return nil, err with OpenSSL's error queue in err; the queue is then cleared.
local ffi = require "ffi"

local ffi_new, ffi_str, ffi_gc, ffi_istype = ffi.new, ffi.string, ffi.gc, ffi.istype
local concat, floor, tonumber, type, tostring = table.concat, math.floor, tonumber, type, tostring
local encode_base64, decode_base64 = ngx.encode_base64, ngx.decode_base64

local _M = {}

-- Our declarations use private names redirected to the real symbols (__asm__), so they can
-- never clash with lua-resty-core's, lua-resty-openssl's or anyone's cdefs of the same
-- OpenSSL functions, in either load order. Types are the real struct tags (pointers only), so
-- an EVP_PKEY* from another library is the same type as ours.
local PREFIX = "edge_acme_"
local PROTOTYPES = {
  "unsigned long ERR_get_error(void)",
  "unsigned long ERR_peek_error(void)",
  "void ERR_error_string_n(unsigned long e, char *buf, size_t len)",
  "void ERR_clear_error(void)",
  "int RAND_bytes(unsigned char *buf, int num)",
  "unsigned long OpenSSL_version_num(void)",

  "struct evp_pkey_ctx_st *EVP_PKEY_CTX_new_from_name(struct ossl_lib_ctx_st *libctx, const char *name, const char *propquery)",
  "int EVP_PKEY_keygen_init(struct evp_pkey_ctx_st *ctx)",
  "int EVP_PKEY_CTX_set_group_name(struct evp_pkey_ctx_st *ctx, const char *name)",
  "int EVP_PKEY_CTX_set_rsa_keygen_bits(struct evp_pkey_ctx_st *ctx, int bits)",
  "int EVP_PKEY_generate(struct evp_pkey_ctx_st *ctx, struct evp_pkey_st **ppkey)",
  "void EVP_PKEY_CTX_free(struct evp_pkey_ctx_st *ctx)",
  "void EVP_PKEY_free(struct evp_pkey_st *pkey)",
  "int EVP_PKEY_get_base_id(const struct evp_pkey_st *pkey)",
  "int EVP_PKEY_get_bits(const struct evp_pkey_st *pkey)",
  "int EVP_PKEY_get_size(const struct evp_pkey_st *pkey)",
  "int EVP_PKEY_get_group_name(const struct evp_pkey_st *pkey, char *name, size_t name_sz, size_t *gname_len)",
  "int EVP_PKEY_get_bn_param(const struct evp_pkey_st *pkey, const char *key_name, struct bignum_st **bn)",

  "void BN_free(struct bignum_st *a)",
  "int BN_num_bits(const struct bignum_st *a)",
  "int BN_bn2binpad(const struct bignum_st *a, unsigned char *to, int tolen)",

  "const struct bio_method_st *BIO_s_mem(void)",
  "struct bio_st *BIO_new(const struct bio_method_st *type)",
  "struct bio_st *BIO_new_mem_buf(const void *buf, int len)",
  "int BIO_free(struct bio_st *a)",
  "long BIO_ctrl(struct bio_st *bp, int cmd, long larg, void *parg)",
  "int PEM_write_bio_PKCS8PrivateKey(struct bio_st *bp, const struct evp_pkey_st *x, const struct evp_cipher_st *enc, const char *kstr, int klen, void *cb, void *u)",
  "struct evp_pkey_st *PEM_read_bio_PrivateKey(struct bio_st *bp, struct evp_pkey_st **x, void *cb, const char *u)",
  "struct x509_st *PEM_read_bio_X509(struct bio_st *bp, struct x509_st **x, void *cb, void *u)",
  "void X509_free(struct x509_st *a)",
  "const struct asn1_string_st *X509_get0_notAfter(const struct x509_st *x)",
  "const struct asn1_string_st *X509_get0_notBefore(const struct x509_st *x)",
  "const struct asn1_string_st *X509_get0_authority_key_id(struct x509_st *x)",
  "const struct asn1_string_st *X509_get0_serialNumber(const struct x509_st *x)",
  "const unsigned char *ASN1_STRING_get0_data(const struct asn1_string_st *x)",
  "int ASN1_STRING_length(const struct asn1_string_st *x)",
  "int ASN1_TIME_to_tm(const struct asn1_string_st *s, struct edge_acme_tm *tm)",

  "const struct evp_md_st *EVP_sha256(void)",
  "const struct evp_md_st *EVP_sha384(void)",
  "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const struct evp_md_st *type, struct engine_st *impl)",
  "struct evp_md_ctx_st *EVP_MD_CTX_new(void)",
  "void EVP_MD_CTX_free(struct evp_md_ctx_st *ctx)",
  "int EVP_DigestSignInit(struct evp_md_ctx_st *ctx, struct evp_pkey_ctx_st **pctx, const struct evp_md_st *type, struct engine_st *e, struct evp_pkey_st *pkey)",
  "int EVP_DigestSign(struct evp_md_ctx_st *ctx, unsigned char *sigret, size_t *siglen, const void *tbs, size_t tbslen)",
  "struct ECDSA_SIG_st *d2i_ECDSA_SIG(struct ECDSA_SIG_st **sig, const unsigned char **pp, long len)",
  "void ECDSA_SIG_get0(const struct ECDSA_SIG_st *sig, const struct bignum_st **pr, const struct bignum_st **ps)",
  "void ECDSA_SIG_free(struct ECDSA_SIG_st *sig)",

  "struct X509_req_st *X509_REQ_new(void)",
  "void X509_REQ_free(struct X509_req_st *a)",
  "int X509_REQ_set_version(struct X509_req_st *x, long version)",
  "struct X509_name_st *X509_REQ_get_subject_name(const struct X509_req_st *req)",
  "int X509_NAME_add_entry_by_txt(struct X509_name_st *name, const char *field, int type, const char *bytes, int len, int loc, int set)",
  "int X509_REQ_set_pubkey(struct X509_req_st *x, struct evp_pkey_st *pkey)",
  "struct X509_extension_st *X509V3_EXT_nconf_nid(void *conf, void *ctx, int ext_nid, const char *value)",
  "void X509_EXTENSION_free(struct X509_extension_st *a)",
  "struct stack_st *OPENSSL_sk_new_null(void)",
  "int OPENSSL_sk_push(struct stack_st *st, const void *data)",
  "void OPENSSL_sk_free(struct stack_st *st)",
  "int X509_REQ_add_extensions(struct X509_req_st *req, const struct stack_st *exts)",
  "int X509_REQ_sign(struct X509_req_st *x, struct evp_pkey_st *pkey, const struct evp_md_st *md)",
  "int i2d_X509_REQ(const struct X509_req_st *a, unsigned char **out)",
}

-- The marker typedef comes last: when it exists, a previous load of this file (package.loaded
-- cleared, or a second copy) declared everything and a second ffi.cdef would be a redefinition.
if not pcall(ffi.typeof, "edge_acme_cdefs_v2") then
  local decls = {
    -- glibc's struct tm (ASN1_TIME_to_tm writes one).
    "struct edge_acme_tm { int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;"
      .. " long tm_gmtoff; const char *tm_zone; };",
  }
  for i, proto in ipairs(PROTOTYPES) do
    local name = proto:match("([%w_]+)%(")
    decls[#decls + 1] = proto:gsub("([%w_]+)%(", PREFIX .. "%1(", 1) .. ' __asm__("' .. name .. '");'
  end
  decls[#decls + 1] = "typedef int edge_acme_cdefs_v2;"
  ffi.cdef(concat(decls, "\n"))
end

-- C.X is the OpenSSL function X (resolved on first use, so requiring this file never fails).
local C = setmetatable({}, { __index = function(t, name)
  local f = ffi.C[PREFIX .. name]
  rawset(t, name, f)
  return f
end })

local EVP_PKEY_RSA = 6            -- NID_rsaEncryption
local EVP_PKEY_EC = 408           -- NID_X9_62_id_ecPublicKey
local NID_subject_alt_name = 85
local MBSTRING_ASC = 0x1001       -- MBSTRING_FLAG | 1
local BIO_CTRL_INFO = 3           -- BIO_get_mem_data
local UB_COMMON_NAME = 64         -- RFC 5280: a longer name cannot be the CN (the SAN has it)

local KINDS = {
  ["ec-p256"] = { algorithm = "EC", group = "P-256" },
  ["ec-p384"] = { algorithm = "EC", group = "P-384" },
  ["rsa-2048"] = { algorithm = "RSA", bits = 2048 },
}

-- By the group name OpenSSL reports (and the JOSE name, which OpenSSL also accepts).
local P256 = { kind = "ec-p256", kty = "EC", crv = "P-256", size = 32, alg = "ES256", md = "EVP_sha256" }
local P384 = { kind = "ec-p384", kty = "EC", crv = "P-384", size = 48, alg = "ES384", md = "EVP_sha384" }
local CURVES = { prime256v1 = P256, ["P-256"] = P256, secp384r1 = P384, ["P-384"] = P384 }

-- The message for a failure: what we did, then OpenSSL's queued errors, oldest first. The
-- queue is cleared so the next operation (ours or nginx's) does not inherit them.
local function openssl_error(what)
  local msgs = {}
  local buf = ffi_new("char[256]")
  while true do
    local code = C.ERR_get_error()
    if code == 0 then break end
    C.ERR_error_string_n(code, buf, 256)
    msgs[#msgs + 1] = ffi_str(buf)
  end
  C.ERR_clear_error()
  if #msgs == 0 then return what .. " failed" end
  return what .. " failed: " .. concat(msgs, "; ")
end

local function new_pkey_ptr()
  return ffi_new("struct evp_pkey_st *[1]")
end

-- What we need to know about a key we support, or nil, err.
local function key_info(key)
  if type(key) ~= "cdata" or not ffi_istype("struct evp_pkey_st *", key) or key == nil then
    return nil, "not a key (expected one from generate_key or key_from_pem)"
  end
  local id = C.EVP_PKEY_get_base_id(key)
  if id == EVP_PKEY_EC then
    local buf = ffi_new("char[80]")
    local len = ffi_new("size_t[1]")
    if C.EVP_PKEY_get_group_name(key, buf, 80, len) ~= 1 then
      return nil, openssl_error("reading the key's curve")
    end
    local group = ffi_str(buf, tonumber(len[0]))
    local curve = CURVES[group]
    if not curve then return nil, "unsupported EC curve " .. group .. " (P-256 or P-384)" end
    return curve
  elseif id == EVP_PKEY_RSA then
    local bits = C.EVP_PKEY_get_bits(key)
    if bits < 2048 then return nil, "RSA key too small (" .. bits .. " bits, at least 2048)" end
    return { kind = "rsa-" .. bits, kty = "RSA", bits = bits, alg = "RS256", md = "EVP_sha256" }
  end
  return nil, "unsupported key type (EVP_PKEY id " .. id .. "; EC P-256/P-384 or RSA)"
end

------------------------------------------------------------------------------------------
-- Encodings and hashes

local TO_URL = { ["+"] = "-", ["/"] = "_" }
local FROM_URL = { ["-"] = "+", ["_"] = "/" }

-- RFC 4648 §5 base64url, without padding (as JOSE wants).
function _M.base64url(data)
  return (encode_base64(data, true):gsub("[+/]", TO_URL))
end

function _M.base64url_decode(s)
  if type(s) ~= "string" then return nil, "base64url: not a string" end
  if s:find("[^A-Za-z0-9_%-]") then return nil, "base64url: invalid character" end
  local rem = #s % 4
  if rem == 1 then return nil, "base64url: invalid length" end
  local std = s:gsub("[-_]", FROM_URL) .. (rem == 2 and "==" or rem == 3 and "=" or "")
  local out = decode_base64(std)
  if not out then return nil, "base64url: invalid" end
  return out
end

local function digest(md, size, data)
  if type(data) ~= "string" then return nil, "data must be a string" end
  local out = ffi_new("unsigned char[?]", size)
  if C.EVP_Digest(data, #data, out, nil, C[md](), nil) ~= 1 then
    return nil, openssl_error("EVP_Digest")
  end
  return ffi_str(out, size)
end

function _M.sha256(data)
  return digest("EVP_sha256", 32, data)
end

function _M.random(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then return nil, "random: n must be a whole number >= 0" end
  if n == 0 then return "" end
  local buf = ffi_new("unsigned char[?]", n)
  if C.RAND_bytes(buf, n) ~= 1 then return nil, openssl_error("RAND_bytes") end
  return ffi_str(buf, n)
end

------------------------------------------------------------------------------------------
-- Keys

-- kind: "ec-p256" (default), "ec-p384" or "rsa-2048".
function _M.generate_key(kind)
  kind = kind or "ec-p256"
  local spec = KINDS[kind]
  if not spec then
    return nil, "unknown key kind " .. tostring(kind) .. " (ec-p256, ec-p384 or rsa-2048)"
  end
  C.ERR_clear_error()
  local ctx = C.EVP_PKEY_CTX_new_from_name(nil, spec.algorithm, nil)
  if ctx == nil then return nil, openssl_error("EVP_PKEY_CTX_new_from_name(" .. spec.algorithm .. ")") end
  local pkey = new_pkey_ptr()
  local step = "EVP_PKEY_keygen_init"
  local ok = C.EVP_PKEY_keygen_init(ctx) == 1
  if ok and spec.group then
    step = "EVP_PKEY_CTX_set_group_name"
    ok = C.EVP_PKEY_CTX_set_group_name(ctx, spec.group) > 0
  elseif ok then
    step = "EVP_PKEY_CTX_set_rsa_keygen_bits"
    ok = C.EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, spec.bits) > 0
  end
  if ok then
    step = "EVP_PKEY_generate"
    ok = C.EVP_PKEY_generate(ctx, pkey) == 1
  end
  C.EVP_PKEY_CTX_free(ctx)
  if not ok or pkey[0] == nil then
    if pkey[0] ~= nil then C.EVP_PKEY_free(pkey[0]) end
    return nil, openssl_error("generating a " .. kind .. " key: " .. step)
  end
  return ffi_gc(pkey[0], C.EVP_PKEY_free)
end

-- "ec-p256", "ec-p384" or "rsa-<bits>", or nil, err for a key we do not support.
function _M.key_kind(key)
  local info, err = key_info(key)
  if not info then return nil, err end
  return info.kind
end

-- The contents of a memory BIO.
local function bio_contents(bio)
  local p = ffi_new("char *[1]")
  local n = tonumber(C.BIO_ctrl(bio, BIO_CTRL_INFO, 0, p))
  if n <= 0 or p[0] == nil then return "" end
  return ffi_str(p[0], n)
end

-- The private key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY").
function _M.key_to_pem(key)
  local _, err = key_info(key)
  if err then return nil, err end
  C.ERR_clear_error()
  local bio = C.BIO_new(C.BIO_s_mem())
  if bio == nil then return nil, openssl_error("BIO_new") end
  local pem
  if C.PEM_write_bio_PKCS8PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 then
    pem = bio_contents(bio)
  end
  C.BIO_free(bio)
  if not pem or pem == "" then return nil, openssl_error("PEM_write_bio_PKCS8PrivateKey") end
  return pem
end

-- A private key from PEM: PKCS#8 ("BEGIN PRIVATE KEY") or traditional ("BEGIN EC PRIVATE
-- KEY", "BEGIN RSA PRIVATE KEY"). Encrypted keys are refused, never prompted for.
function _M.key_from_pem(pem)
  if type(pem) ~= "string" or pem == "" then return nil, "key_from_pem: PEM must be a non-empty string" end
  C.ERR_clear_error()
  local bio = C.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil, openssl_error("BIO_new_mem_buf") end
  -- An empty passphrase as the default callback's userdata: without it OpenSSL would ask on
  -- the terminal for an encrypted key's passphrase.
  local key = C.PEM_read_bio_PrivateKey(bio, nil, nil, "")
  C.BIO_free(bio)
  if key == nil then return nil, openssl_error("reading the private key (PEM_read_bio_PrivateKey)") end
  -- OpenSSL 3's decoders may leave errors from the formats they tried first, even on success.
  C.ERR_clear_error()
  key = ffi_gc(key, C.EVP_PKEY_free)
  local _, err = key_info(key)
  if err then
    C.EVP_PKEY_free(ffi_gc(key, nil))
    return nil, err
  end
  return key
end

-- A BIGNUM parameter of the key as big-endian bytes, left-padded to size (or minimal).
local function bn_param(key, name, size)
  local pbn = ffi_new("struct bignum_st *[1]")
  if C.EVP_PKEY_get_bn_param(key, name, pbn) ~= 1 or pbn[0] == nil then
    return nil, openssl_error("reading the key's " .. name)
  end
  local bn = pbn[0]
  local n = size or floor((C.BN_num_bits(bn) + 7) / 8)
  if n < 1 then n = 1 end
  local buf = ffi_new("unsigned char[?]", n)
  local written = C.BN_bn2binpad(bn, buf, n)
  C.BN_free(bn)
  if written ~= n then return nil, openssl_error("BN_bn2binpad(" .. name .. ")") end
  return ffi_str(buf, n)
end

-- The public JWK (RFC 7517/7518): EC coordinates are left-padded to the field size.
function _M.jwk(key)
  local info, err = key_info(key)
  if not info then return nil, err end
  C.ERR_clear_error()
  if info.kty == "EC" then
    local x, xerr = bn_param(key, "qx", info.size)
    if not x then return nil, xerr end
    local y, yerr = bn_param(key, "qy", info.size)
    if not y then return nil, yerr end
    return { kty = "EC", crv = info.crv, x = _M.base64url(x), y = _M.base64url(y) }
  end
  local n, nerr = bn_param(key, "n")
  if not n then return nil, nerr end
  local e, eerr = bn_param(key, "e")
  if not e then return nil, eerr end
  return { kty = "RSA", n = _M.base64url(n), e = _M.base64url(e) }
end

-- RFC 7638 §3.2: the required members of each key type.
local THUMBPRINT_MEMBERS = {
  EC = { "crv", "kty", "x", "y" },
  RSA = { "e", "kty", "n" },
  OKP = { "crv", "kty", "x" },
  oct = { "k", "kty" },
}

-- RFC 7638 thumbprint of a JWK given as a table (any key's, e.g. the RFC's example).
function _M.jwk_thumbprint_of(jwk)
  if type(jwk) ~= "table" then return nil, "jwk must be a table" end
  local members = THUMBPRINT_MEMBERS[jwk.kty]
  if not members then return nil, "unsupported JWK kty " .. tostring(jwk.kty) end
  local parts = {}
  for i, name in ipairs(members) do
    local v = jwk[name]
    -- base64url values and names like "P-256" need no JSON escaping, so the canonical JSON
    -- (lexicographic members, no whitespace) can be written directly.
    if type(v) ~= "string" or v == "" or v:find("[^A-Za-z0-9_%-]") then
      return nil, "JWK member " .. name .. " missing or not base64url/a plain name"
    end
    parts[i] = '"' .. name .. '":"' .. v .. '"'
  end
  return _M.base64url(_M.sha256("{" .. concat(parts, ",") .. "}"))
end

function _M.jwk_thumbprint(key)
  local jwk, err = _M.jwk(key)
  if not jwk then return nil, err end
  return _M.jwk_thumbprint_of(jwk)
end

function _M.jws_alg(key)
  local info, err = key_info(key)
  if not info then return nil, err end
  return info.alg
end

------------------------------------------------------------------------------------------
-- Signatures

-- OpenSSL's DER ECDSA-Sig-Value to JWS's fixed-length r‖s (RFC 7518 §3.4).
local function ecdsa_der_to_raw(der, der_len, size)
  local pp = ffi_new("const unsigned char *[1]", der)
  local sig = C.d2i_ECDSA_SIG(nil, pp, der_len)
  if sig == nil then return nil, openssl_error("d2i_ECDSA_SIG") end
  local pr = ffi_new("const struct bignum_st *[1]")
  local ps = ffi_new("const struct bignum_st *[1]")
  C.ECDSA_SIG_get0(sig, pr, ps) -- r and s belong to sig
  local raw = ffi_new("unsigned char[?]", 2 * size)
  local ok = C.BN_bn2binpad(pr[0], raw, size) == size and C.BN_bn2binpad(ps[0], raw + size, size) == size
  C.ECDSA_SIG_free(sig)
  if not ok then return nil, openssl_error("BN_bn2binpad(ECDSA r, s)") end
  return ffi_str(raw, 2 * size)
end

-- The JWS signature of data: ES256/ES384 as r‖s, RS256 as RSASSA-PKCS1-v1_5 with SHA-256.
function _M.sign(key, data)
  local info, err = key_info(key)
  if not info then return nil, err end
  if type(data) ~= "string" then return nil, "sign: data must be a string" end
  C.ERR_clear_error()
  local ctx = C.EVP_MD_CTX_new()
  if ctx == nil then return nil, openssl_error("EVP_MD_CTX_new") end
  local max = C.EVP_PKEY_get_size(key)
  local buf = ffi_new("unsigned char[?]", max)
  local len = ffi_new("size_t[1]", max)
  local step = "EVP_DigestSignInit"
  -- pctx NULL: the EVP_PKEY_CTX DigestSignInit makes belongs to ctx and goes with it.
  local ok = C.EVP_DigestSignInit(ctx, nil, C[info.md](), nil, key) == 1
  if ok then
    step = "EVP_DigestSign"
    ok = C.EVP_DigestSign(ctx, buf, len, data, #data) == 1
  end
  C.EVP_MD_CTX_free(ctx)
  if not ok then return nil, openssl_error("signing (" .. step .. ")") end
  if info.kty == "EC" then return ecdsa_der_to_raw(buf, tonumber(len[0]), info.size) end
  return ffi_str(buf, tonumber(len[0]))
end

------------------------------------------------------------------------------------------
-- CSRs and certificates

-- Names we put in a CSR: DNS names (ASCII/punycode, a leading "*." allowed). Anything else
-- (commas, colons, spaces) would also change the meaning of the SAN config string below.
local function check_name(name)
  if type(name) ~= "string" or name == "" or #name > 253 then return false end
  return name:find("^[A-Za-z0-9*_][A-Za-z0-9._%-]*$") ~= nil
end

-- DER PKCS#10 request: subject CN = names[1] (when it fits the 64-character limit),
-- subjectAltName DNS: every name (duplicates dropped), signed by key (SHA-256; P-384 SHA-384).
function _M.csr(key, names)
  local info, err = key_info(key)
  if not info then return nil, err end
  if type(names) ~= "table" or #names == 0 then return nil, "csr: at least one name is needed" end
  local sans, seen = {}, {}
  for i = 1, #names do
    local name = names[i]
    if not check_name(name) then return nil, "csr: not a DNS name: " .. tostring(name) end
    if not seen[name] then
      seen[name] = true
      sans[#sans + 1] = "DNS:" .. name
    end
  end
  local cn = names[1]

  C.ERR_clear_error()
  local req = C.X509_REQ_new()
  if req == nil then return nil, openssl_error("X509_REQ_new") end
  local ext, exts, der, step
  repeat
    step = "X509_REQ_set_version"
    if C.X509_REQ_set_version(req, 0) ~= 1 then break end
    if #cn <= UB_COMMON_NAME then
      step = "setting the subject CN"
      local subject = C.X509_REQ_get_subject_name(req) -- belongs to req
      if C.X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, cn, #cn, -1, 0) ~= 1 then break end
    end
    step = "X509_REQ_set_pubkey"
    if C.X509_REQ_set_pubkey(req, key) ~= 1 then break end
    step = "building the subjectAltName extension"
    ext = C.X509V3_EXT_nconf_nid(nil, nil, NID_subject_alt_name, concat(sans, ","))
    if ext == nil then break end
    step = "adding the extension"
    exts = C.OPENSSL_sk_new_null()
    if exts == nil or C.OPENSSL_sk_push(exts, ext) <= 0 then break end
    if C.X509_REQ_add_extensions(req, exts) ~= 1 then break end -- copies them
    step = "X509_REQ_sign"
    if C.X509_REQ_sign(req, key, C[info.md]()) <= 0 then break end
    step = "i2d_X509_REQ"
    local n = C.i2d_X509_REQ(req, nil)
    if n <= 0 then break end
    local buf = ffi_new("unsigned char[?]", n)
    local p = ffi_new("unsigned char *[1]", buf)
    if C.i2d_X509_REQ(req, p) ~= n then break end
    der = ffi_str(buf, n)
  until true
  if exts ~= nil then C.OPENSSL_sk_free(exts) end -- the stack only; ext is freed next
  if ext ~= nil then C.X509_EXTENSION_free(ext) end
  C.X509_REQ_free(req)
  if not der then return nil, openssl_error("building the CSR: " .. step) end
  return der
end

-- Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
_M.days_from_civil = days_from_civil

-- The first certificate in pem, for fn(cert) (which must not keep it); fn's results, or nil and an error.
local function with_certificate(pem, what, fn)
  if type(pem) ~= "string" or pem == "" then return nil, what .. ": PEM must be a non-empty string" end
  C.ERR_clear_error()
  local bio = C.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return nil, openssl_error("BIO_new_mem_buf") end
  local cert = C.PEM_read_bio_X509(bio, nil, nil, nil)
  C.BIO_free(bio)
  if cert == nil then return nil, openssl_error("reading the certificate (PEM_read_bio_X509)") end
  local a, b = fn(cert)
  C.X509_free(cert)
  if a == nil then return nil, openssl_error(b) end
  C.ERR_clear_error()
  return a, b
end

local function unix_time(t, tm)
  if t == nil or C.ASN1_TIME_to_tm(t, tm) ~= 1 then return nil end
  local days = days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday)
  return days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec
end

-- Unix times of the notBefore and notAfter of the first certificate in pem.
function _M.cert_validity(pem)
  return with_certificate(pem, "cert_validity", function(cert)
    local tm = ffi_new("struct edge_acme_tm")
    local not_before = unix_time(C.X509_get0_notBefore(cert), tm)
    local not_after = unix_time(C.X509_get0_notAfter(cert), tm)
    if not not_before or not not_after then return nil, "reading the validity (ASN1_TIME_to_tm)" end
    return not_before, not_after
  end)
end

-- Unix time of the notAfter of the first certificate in pem.
function _M.cert_not_after(pem)
  local not_before, not_after = _M.cert_validity(pem)
  if not not_before then return nil, not_after end
  return not_after
end

local function asn1_bytes(s)
  return ffi_str(C.ASN1_STRING_get0_data(s), C.ASN1_STRING_length(s))
end

-- The ARI certificate identifier (RFC 9773 4.1) of the first certificate in pem:
-- base64url(authority key identifier) "." base64url(the serial's DER integer content octets).
function _M.ari_cert_id(pem)
  return with_certificate(pem, "ari_cert_id", function(cert)
    local akid = C.X509_get0_authority_key_id(cert)
    if akid == nil then return nil, "the certificate has no authority key identifier" end
    local serial = asn1_bytes(C.X509_get0_serialNumber(cert))
    -- OpenSSL keeps the magnitude; DER adds a zero octet when the high bit is set (serials are positive).
    if serial:byte(1) and serial:byte(1) >= 0x80 then serial = "\0" .. serial end
    return _M.base64url(asn1_bytes(akid)) .. "." .. _M.base64url(serial)
  end)
end

-- Whether OpenSSL's error queue is empty (for tests: every failure must clear it).
function _M.error_queue_empty()
  return C.ERR_peek_error() == 0
end

-- OpenSSL's version number (0x30000000 and up for OpenSSL 3).
function _M.openssl_version_num()
  return tonumber(C.OpenSSL_version_num())
end

return _M
