// Our ACME client's crypto (lua/edge/acme/crypto.lua: LuaJIT FFI to the libcrypto nginx links),
// in a real nginx (Debian's, with the lua module; no lua-resty-auto-ssl), checked against
// independent implementations: Node's crypto for JWKs, signatures, thumbprints, PEMs, hashes
// and certificate dates, the openssl CLI for CSRs. Also: bad input gives OpenSSL's reason
// and leaves the error queue empty, and many iterations of everything do not grow the worker.
import { spawnSync } from 'node:child_process';
import {
  createHash, createPrivateKey, createPublicKey, JsonWebKey, randomBytes, verify, X509Certificate,
} from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeCa, makeServerCert } from '../../bin/local-edge/pki';
import { freePort } from '../../bin/local-edge/processes';
import { AcmeCryptoNginx } from './support/acme-crypto-nginx';
import { stopEverything } from './support/leftovers';

const work = mkdtempSync(path.join(os.tmpdir(), 'acme-crypto-'));
let nginx: AcmeCryptoNginx;

async function call<T = any>(pathAndQuery: string, body?: string | Buffer): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${nginx.port}${pathAndQuery}`, {
    method: body === undefined ? 'GET' : 'POST', body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${pathAndQuery}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** RFC 7638 in Node: SHA-256 of the required members, lexicographic, no whitespace. */
function nodeThumbprint(jwk: JsonWebKey): string {
  const required: Record<string, string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'] };
  const canonical = JSON.stringify(Object.fromEntries(required[jwk.kty!].map((k) => [k, (jwk as any)[k]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  chmodSync(work, 0o755);
  nginx = new AcmeCryptoNginx(path.join(work, 'nginx'), await freePort());
  await nginx.start();
}, 60000);

afterAll(async () => {
  await stopEverything(work, [() => nginx?.stop()]);
}, 30000);

interface KeyReply {
  kind: string; alg: string; jwk: JsonWebKey; thumbprint: string; sig: string; sig_len: number;
  pem: string; pem_jwk: JsonWebKey; pem_kind: string; csr: string;
}

const KINDS = [
  { kind: 'ec-p256', alg: 'ES256', hash: 'sha256', crv: 'P-256', coord: 32, sigLen: 64, csrSig: 'ecdsa-with-SHA256' },
  { kind: 'ec-p384', alg: 'ES384', hash: 'sha384', crv: 'P-384', coord: 48, sigLen: 96, csrSig: 'ecdsa-with-SHA384' },
  { kind: 'rsa-2048', alg: 'RS256', hash: 'sha256', crv: undefined, coord: 0, sigLen: 256, csrSig: 'sha256WithRSAEncryption' },
];
const NAMES = ['first.example.test', 'second.example.test', '*.wild.example.test'];

describe.each(KINDS)('$kind', (k) => {
  const message = randomBytes(137);
  let reply: KeyReply;

  beforeAll(async () => {
    reply = await call<KeyReply>(`/key?kind=${k.kind}&names=${encodeURIComponent(NAMES.join(','))}`, message);
  });

  test('the JWK is the public key, with coordinates padded to the field size', () => {
    expect(reply.kind).toBe(k.kind);
    expect(reply.alg).toBe(k.alg);
    const pub = createPublicKey({ key: reply.jwk, format: 'jwk' });
    // Node's own export of that key: same members, same (padded) values.
    const exported = pub.export({ format: 'jwk' });
    if (k.crv) {
      expect(reply.jwk).toEqual({ kty: 'EC', crv: k.crv, x: exported.x, y: exported.y });
      expect(Buffer.from(reply.jwk.x!, 'base64url')).toHaveLength(k.coord);
      expect(Buffer.from(reply.jwk.y!, 'base64url')).toHaveLength(k.coord);
    } else {
      expect(reply.jwk).toEqual({ kty: 'RSA', n: exported.n, e: 'AQAB' });
      expect(Buffer.from(reply.jwk.n!, 'base64url')).toHaveLength(256);
    }
  });

  test('the JWK verifies sign()\'s signature of the message, and only of it', () => {
    const key = { key: createPublicKey({ key: reply.jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' as const };
    const sig = Buffer.from(reply.sig, 'base64url');
    expect(sig).toHaveLength(k.sigLen);
    expect(reply.sig_len).toBe(k.sigLen);
    expect(verify(k.hash, message, key, sig)).toBe(true);
    const other = Buffer.from(message);
    other[0] ^= 1;
    expect(verify(k.hash, other, key, sig)).toBe(false);
  });

  test('the thumbprint is RFC 7638\'s, computed in Node', () => {
    expect(reply.thumbprint).toBe(nodeThumbprint(reply.jwk));
    expect(reply.thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('key_to_pem is PKCS#8 that Node imports; key_from_pem gives the same key back', () => {
    expect(reply.pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    const priv = createPrivateKey(reply.pem);
    expect(createPublicKey(priv).export({ format: 'jwk' })).toEqual(
      createPublicKey({ key: reply.jwk, format: 'jwk' }).export({ format: 'jwk' }));
    expect(reply.pem_jwk).toEqual(reply.jwk);
    expect(reply.pem_kind).toBe(k.kind);
  });

  test('key_from_pem reads the traditional (SEC1 / PKCS#1) PEM too', async () => {
    const traditional = createPrivateKey(reply.pem).export({ type: k.crv ? 'sec1' : 'pkcs1', format: 'pem' }).toString();
    expect(traditional).toContain(k.crv ? 'BEGIN EC PRIVATE KEY' : 'BEGIN RSA PRIVATE KEY');
    const back = await call<{ jwk: JsonWebKey; alg: string; sig: string }>('/from_pem', traditional);
    expect(back.jwk).toEqual(reply.jwk);
    expect(back.alg).toBe(k.alg);
    const key = { key: createPublicKey({ key: reply.jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' as const };
    expect(verify(k.hash, Buffer.from('hello'), key, Buffer.from(back.sig, 'base64url'))).toBe(true);
  });

  test('the CSR verifies with openssl, names CN = first name and every name as a DNS SAN, and has the key', () => {
    const der = path.join(work, `${k.kind}.csr.der`);
    writeFileSync(der, Buffer.from(reply.csr, 'base64url'));
    const text = openssl(['req', '-inform', 'DER', '-in', der, '-noout', '-text', '-verify']);
    expect(text.status).toBe(0);
    expect(text.out).toMatch(/verify OK/);
    expect(text.out).toMatch(/Subject: CN ?= ?first\.example\.test\n/);
    expect(text.out).toMatch(/X509v3 Subject Alternative Name:\s*\n\s*DNS:first\.example\.test, DNS:second\.example\.test, DNS:\*\.wild\.example\.test\n/);
    expect(text.out).toContain(`Signature Algorithm: ${k.csrSig}`);
    const pub = openssl(['req', '-inform', 'DER', '-in', der, '-noout', '-pubkey']);
    expect(pub.status).toBe(0);
    const csrKey = createPublicKey(pub.out.slice(pub.out.indexOf('-----BEGIN PUBLIC KEY-----')));
    expect(csrKey.export({ format: 'jwk' })).toEqual(createPublicKey({ key: reply.jwk, format: 'jwk' }).export({ format: 'jwk' }));
  });
});

test('RFC 7638 §3.1: the example key\'s thumbprint', async () => {
  const example = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3'
      + 'oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6'
      + 'qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJz'
      + 'KnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29',
  };
  const reply = await call<{ thumbprint: string }>('/thumbprint', JSON.stringify(example));
  expect(reply.thumbprint).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  expect(nodeThumbprint(example)).toBe(reply.thumbprint);
});

describe('cert_not_after', () => {
  let leaf: string;
  let caPem: string;
  let longLived: string;

  beforeAll(() => {
    const ca = makeCa(work, 'test-ca');
    leaf = readFileSync(makeServerCert(work, 'leaf', ca, ['DNS:leaf.example.test']).cert, 'utf8');
    caPem = readFileSync(ca.cert, 'utf8');
    // Beyond 2049: notAfter is a GeneralizedTime, not a UTCTime.
    const out = path.join(work, 'long.pem');
    const made = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '10000', '-subj', '/CN=long', '-keyout', path.join(work, 'long.key'), '-out', out]);
    expect(made.status).toBe(0);
    longLived = readFileSync(out, 'utf8');
  });

  const expected = (pem: string) => Date.parse(new X509Certificate(pem).validTo) / 1000;

  test('is Node\'s validTo of a certificate made by openssl (pki.ts)', async () => {
    const reply = await call<{ not_after: number }>('/not_after', leaf);
    expect(reply.not_after).toBe(expected(leaf));
    expect(reply.not_after).toBeGreaterThan(Date.now() / 1000);
  });

  test('takes the first certificate of a chain, and GeneralizedTime dates', async () => {
    const reply = await call<{ not_after: number }>('/not_after', `${longLived}${leaf}${caPem}`);
    expect(reply.not_after).toBe(expected(longLived));
    expect(new Date(reply.not_after * 1000).getUTCFullYear()).toBeGreaterThan(2050);
  });
});

test('base64url, its decoder, sha256 and random, for every length 0..70', async () => {
  interface Item { hex: string; len: number; b64: string; roundtrip: boolean; sha256: string }
  const reply = await call<{ items: Item[]; bad: Array<{ input: string; ok: boolean; err: string }> }>('/encodings?max=70');
  expect(reply.items).toHaveLength(71);
  const distinct = new Set<string>();
  for (const item of reply.items) {
    const bytes = Buffer.from(item.hex, 'hex');
    expect(bytes).toHaveLength(item.len);
    expect(item.b64).toBe(bytes.toString('base64url'));
    expect(item.roundtrip).toBe(true);
    expect(item.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    if (item.len >= 16) distinct.add(item.hex.slice(0, 32));
  }
  expect(distinct.size).toBe(reply.items.length - 16); // random() is random
  for (const bad of reply.bad) {
    expect({ input: bad.input, ok: bad.ok }).toEqual({ input: bad.input, ok: false });
    expect(bad.err).toMatch(/^base64url: /);
  }
});

test('bad input: nil and OpenSSL\'s reason, an empty error queue, and the next call works', async () => {
  const r = await call('/bad');
  expect(r.openssl).toMatch(/^0x3/);
  // OpenSSL's own error string (error:XXXXXXXX:<lib> routines:...), after what we tried.
  expect(r.garbage.ok).toBe(false);
  expect(r.garbage.err).toMatch(/^reading the private key \(PEM_read_bio_PrivateKey\) failed: error:[0-9A-F]{8}:.*routines/);
  expect(r.garbage.queue_empty).toBe(true);
  expect(r.after_garbage).toEqual({ ok: true, same: true });
  expect(r.truncated.ok).toBe(false);
  expect(r.truncated.err).toMatch(/error:[0-9A-F]{8}:/);
  expect(r.truncated.queue_empty).toBe(true);
  expect(r.csr_empty).toEqual({ ok: false, err: 'csr: at least one name is needed' });
  expect(r.csr_bad_name).toEqual({ ok: false, err: 'csr: not a DNS name: bad,name' });
  expect(r.unknown_kind.ok).toBe(false);
  expect(r.unknown_kind.err).toMatch(/^unknown key kind ec-p521/);
  expect(r.sign_not_key.ok).toBe(false);
  expect(r.sign_not_key.err).toMatch(/^not a key/);
  expect(r.cert_garbage.ok).toBe(false);
  expect(r.cert_garbage.err).toMatch(/PEM_read_bio_X509\) failed: error:[0-9A-F]{8}:.*routines/);
  expect(r.cert_garbage.queue_empty).toBe(true);
});

test('coexists with other cdefs of the same OpenSSL functions, and can be required twice', async () => {
  const r = await call('/coexist');
  expect(r).toEqual({
    foreign_ok: true, distinct_copies: true, same_thumbprint: true, second_sig_len: 64, foreign_bits: 256, foreign_rand: 1,
  });
});

test('a first name too long for the CN (> 64): no CN, every name in the SAN', async () => {
  const r = await call<{ name: string; csr: string }>('/long_cn');
  expect(r.name).toHaveLength(65);
  const der = path.join(work, 'long-cn.csr.der');
  writeFileSync(der, Buffer.from(r.csr, 'base64url'));
  const text = openssl(['req', '-inform', 'DER', '-in', der, '-noout', '-text', '-verify']);
  expect(text.status).toBe(0);
  expect(text.out).toMatch(/verify OK/);
  expect(text.out).not.toMatch(/CN ?=/);
  expect(text.out).toContain(`DNS:${r.name}, DNS:short.example.test`);
});

test('memory stays flat over many iterations of everything, success and failure paths', async () => {
  const leafPem = readFileSync(makeServerCert(work, 'leaf', makeCa(work, 'test-ca'), ['DNS:leaf.example.test']).cert, 'utf8');
  // 3000 iterations with a P-256 key, 300 with P-384, 20 with RSA (its key generation takes
  // a third of a second): a leak of even one small object per iteration shows as >= 300 kB.
  const run = () => call<{ before: number; after: number; keys: number }>('/memory?n=3000&p384_every=10&rsa_every=150', leafPem);
  // The first run reaches the worker's steady state (allocator arenas, JIT traces, caches).
  const first = await run();
  const second = await run();
  expect(second.keys).toBe(3000 + 300 + 20);
  const growthKb = second.after - second.before;
  console.log(`acme crypto memory: first run ${first.before} -> ${first.after} kB, second ${second.before} -> ${second.after} kB (${growthKb} kB)`);
  expect(growthKb).toBeLessThan(256);
}, 150000);

test('timings (reported, not asserted)', async () => {
  const t = await call<Record<string, number>>('/bench?n=200');
  console.log(`acme crypto µs per operation:\n${Object.entries(t).sort().map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
  expect(Object.keys(t).length).toBeGreaterThan(0);
}, 120000);
