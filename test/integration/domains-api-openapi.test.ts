// docs/domains-api.yaml against the implementation: the domains API (lua/edge/api/domains.lua)
// in a real nginx, over edge.redis_storage and a real redis-server, without lua-resty-auto-ssl
// (runs on a fresh machine with Debian's nginx, lua module and redis-server). Every answer is
// checked against the description with a JSON Schema validator (ajv, draft 2020-12, the dialect
// of OpenAPI 3.1): its status must be documented for the operation, its body must match the
// documented schema, its documented headers must be there. At the end, every documented
// (operation, status) pair must have been seen, and every method the description does not list
// must get 405 with the path's documented methods in Allow.
// Nothing works the registration queue here (no issuer): a PUT leaves the name queued, and the
// states only an issuer reaches are written with edge.store.domain_status.set, as the issuers
// write them. The customer's DNS cannot exist here: a scripted DNS server stands in for it.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv2020, { ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import Redis from 'ioredis';
import { parse } from 'yaml';
import { freePort } from '../../bin/local-edge/processes';
import { RedisServer } from '../../bin/local-edge/redis-server';
import { expireInIndex, storeCertificate } from './support/api-certificates';
import { DomainsApiNginx } from './support/domains-api-nginx';
import { ScriptedDnsServer } from './support/scripted-dns-server';

const SPEC_FILE = path.join(__dirname, '..', '..', 'docs', 'domains-api.yaml');
const PREFIX = 'openapi';
const EDGE_HOSTNAME = 'edge.openapi.test';
const EDGE_ADDRESS = '203.0.113.10';

type Method = 'GET' | 'PUT' | 'DELETE' | 'POST' | 'PATCH' | 'HEAD' | 'OPTIONS';
const ALL_METHODS: Method[] = ['GET', 'PUT', 'DELETE', 'POST', 'PATCH', 'HEAD', 'OPTIONS'];

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly body: any;
}

// --- the description -------------------------------------------------------------------------

const spec = parse(readFileSync(SPEC_FILE, 'utf8'));
const SPEC_ID = 'https://edge.invalid/domains-api.yaml';

/** A copy of a schema with its "#/components/schemas/X" references pointed at the registered $defs. */
function rebased(schema: unknown): any {
  if (Array.isArray(schema)) return schema.map(rebased);
  if (schema && typeof schema === 'object') {
    return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === '$ref' && typeof v === 'string'
      ? v.replace(/^#\/components\/schemas\//, `${SPEC_ID}#/$defs/`) : rebased(v)]));
  }
  return schema;
}

/** Resolves an OpenAPI (non-schema) "$ref" such as "#/components/responses/Unauthorized". */
function deref<T = any>(node: any): T {
  if (node && typeof node.$ref === 'string') {
    return node.$ref.slice(2).split('/').reduce((n: any, key: string) => n?.[key], spec) as T;
  }
  return node as T;
}

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
// The description's schemas as a schema document of their own, so that their references resolve.
ajv.addSchema({ $id: SPEC_ID, $defs: rebased(spec.components.schemas) });
const validators = new Map<unknown, ValidateFunction>();
function validatorOf(schema: unknown): ValidateFunction {
  if (!validators.has(schema)) validators.set(schema, ajv.compile(rebased(schema)));
  return validators.get(schema)!;
}

/** The documented methods of a path, upper case. */
function documentedMethods(pathTemplate: string): string[] {
  return Object.keys(spec.paths[pathTemplate]).filter((k) => k !== 'parameters').map((m) => m.toUpperCase()).sort();
}

/** (operation, status) pairs seen answered as documented. */
const seen = new Set<string>();

/**
 * Checks an answer against the description: the status is documented for the operation, the
 * body matches its schema, its documented headers are there (and equal their `const`), and every
 * answer is JSON that is never cached.
 */
function expectDocumented(method: string, pathTemplate: string, reply: Reply, response?: any): void {
  const operation = spec.paths[pathTemplate]?.[method.toLowerCase()];
  const documented = response ?? (operation && deref(operation.responses[String(reply.status)]));
  if (!documented) {
    throw new Error(`${method} ${pathTemplate} answered ${reply.status}, which the description does not document for it: ${reply.text}`);
  }
  expect(reply.headers['content-type']).toBe('application/json');
  expect(reply.headers['cache-control']).toBe('no-store');
  for (const [name, header] of Object.entries<any>(documented.headers ?? {})) {
    const value = reply.headers[name.toLowerCase()];
    expect([name, value === undefined ? 'missing' : 'present']).toEqual([name, 'present']);
    const schema = deref(header).schema;
    const validate = validatorOf(schema);
    if (!validate(value)) throw new Error(`${method} ${pathTemplate} ${reply.status}: header ${name}="${value}" does not match ${JSON.stringify(schema)}`);
  }
  const schema = documented.content?.['application/json']?.schema;
  expect(schema).toBeDefined();
  const validate = validatorOf(schema);
  if (!validate(reply.body)) {
    throw new Error(`${method} ${pathTemplate} ${reply.status}: the body does not match the description:\n`
      + `${JSON.stringify(reply.body, null, 2)}\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);
  }
  if (!response) seen.add(`${method} ${pathTemplate} ${reply.status}`);
}

// --- the servers -----------------------------------------------------------------------------

const work = mkdtempSync(path.join(os.tmpdir(), 'domains-api-openapi-'));
const token = randomBytes(24).toString('hex');
let redis: RedisServer;
let store: Redis;
let dns: ScriptedDnsServer;
/** With the DNS pre-check (as environments run by default). */
let api: DomainsApiNginx;
/** Without it: the status's dns is the one an issuer stored. */
let plain: DomainsApiNginx;

function call(method: string, urlPath: string, o: { port?: number; authorization?: string | null } = {}): Promise<Reply> {
  const authorization = o.authorization === undefined ? `Bearer ${token}` : o.authorization;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: o.port ?? api.port, path: urlPath, method, agent: false,
      headers: { Accept: 'application/json', ...(authorization !== null ? { Authorization: authorization } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const one = '/v1/domains/{name}';
const list = '/v1/domains';
const run = process.pid;
const name = (label: string) => `${label}-${run}.openapi.test`;
const at = (domain: string) => `/v1/domains/${domain}`;

/** The test's own connection to the store (to arrange data and to see what the API wrote). */
async function connectStore(): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  await client.connect();
  return client;
}

beforeAll(async () => {
  const redisPort = await freePort();
  redis = new RedisServer(redisPort, path.join(work, 'redis'));
  await redis.start();
  store = await connectStore();
  dns = new ScriptedDnsServer();
  await dns.start(await freePort());
  const config = {
    token,
    redis: { host: '127.0.0.1', port: redisPort, prefix: PREFIX, connect_timeout: 500, read_timeout: 1000 },
    edge_hostnames: [EDGE_HOSTNAME],
    profile: 'classic',
  };
  api = new DomainsApiNginx(path.join(work, 'api'), await freePort(), await freePort(), {
    ...config, dns_precheck: { resolver: `127.0.0.1:${dns.port}`, names: [EDGE_HOSTNAME], addresses: [EDGE_ADDRESS], timeout: 300 },
  });
  plain = new DomainsApiNginx(path.join(work, 'plain'), await freePort(), await freePort(), config);
  await api.start();
  await plain.start();
}, 60000);

afterAll(async () => {
  await store?.quit();
  await api?.stop();
  await plain?.stop();
  await dns?.stop();
  await redis?.stop();
  if (!process.env.KEEP_INTEGRATION_DIR) rmSync(work, { recursive: true, force: true });
}, 30000);

// --- the tests -------------------------------------------------------------------------------

test('the description is OpenAPI 3.1 whose schemas compile (JSON Schema 2020-12, strict) and whose references all resolve', () => {
  expect(spec.openapi).toMatch(/^3\.1\.\d+$/);
  expect(spec.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
  expect(spec.security).toEqual([{ bearer: [] }]);
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref') refs.push(v as string);
        else walk(v);
      }
    }
  };
  walk(spec);
  for (const ref of refs) expect([ref, deref({ $ref: ref }) !== undefined]).toEqual([ref, true]);
  const responses: Array<[string, any]> = Object.entries<any>(spec.components.responses).map(([key, r]) => [`components.responses.${key}`, r]);
  for (const [pathTemplate, item] of Object.entries<any>(spec.paths)) {
    for (const method of documentedMethods(pathTemplate)) {
      for (const [status, response] of Object.entries<any>(item[method.toLowerCase()].responses)) responses.push([`${method} ${pathTemplate} ${status}`, response]);
    }
  }
  for (const [where, response] of responses) {
    const media = deref(response).content['application/json'];
    expect(() => validatorOf(media.schema)).not.toThrow();
    // Every example in the description is itself valid.
    const examples = [media.example, ...Object.values<any>(media.examples ?? {}).map((e) => e.value)].filter((e) => e !== undefined);
    expect([where, examples.length > 0]).toEqual([where, true]);
    for (const example of examples) {
      const validate = validatorOf(media.schema);
      if (!validate(example)) throw new Error(`${where}: example invalid: ${ajv.errorsText(validate.errors)}`);
    }
  }
});

test('paths and methods are exactly the Lua\'s: every undocumented method gets 405 with the documented ones in Allow; other paths 404', async () => {
  const domain = name('methods');
  const concrete: Record<string, string> = { [one]: at(domain), [list]: `${list}?state=queued` };
  expect(Object.keys(spec.paths).sort()).toEqual(Object.keys(concrete).sort());
  for (const [pathTemplate, urlPath] of Object.entries(concrete)) {
    const allowed = documentedMethods(pathTemplate);
    for (const method of ALL_METHODS) {
      const reply = await call(method, urlPath);
      if (allowed.includes(method)) {
        expect([method, urlPath, reply.status]).not.toEqual([method, urlPath, 405]);
        continue;
      }
      expect([method, urlPath, reply.status]).toEqual([method, urlPath, 405]);
      expect(String(reply.headers.allow).split(/,\s*/).sort()).toEqual(allowed);
      if (method !== 'HEAD') expectDocumented(method, pathTemplate, reply, deref(spec.components.responses.MethodNotAllowed));
    }
  }
  // The undocumented methods wrote nothing (the GET/PUT/DELETE above were real: clean up).
  await call('DELETE', at(domain));
  // Under /v1/ the Lua answers 404 for anything but the two paths; outside it, nginx does.
  for (const other of ['/v1/domains/', '/v1/domains/a.example.com/certificate', '/v1/other', `/v1/domains/a.example.com%2Fb`]) {
    const reply = await call('GET', other);
    expect([other, reply.status, reply.body]).toEqual([other, 404, { error: 'no such resource' }]);
    expectDocumented('GET', other, reply, deref(spec.components.responses.NoSuchResource));
  }
  expect((await call('GET', '/metrics')).status).toBe(404);
});

test('401 with WWW-Authenticate for a missing, malformed or wrong token, on every operation and before anything else; nothing is written', async () => {
  const domain = name('unauthorized');
  const keysBefore = (await store.keys('*')).sort();
  const wrong = [null, '', 'Bearer', `Basic ${Buffer.from(`x:${token}`).toString('base64')}`, 'Bearer wrong', `Bearer ${token}x`,
    `Bearer ${token.slice(0, -1)}`, `Bearer x${token}`, `Token ${token}`];
  const operations: Array<[string, string, string]> = [['PUT', one, at(domain)], ['GET', one, at(domain)], ['DELETE', one, at(domain)], ['GET', list, `${list}?state=issued`]];
  for (const authorization of wrong) {
    for (const [method, pathTemplate, urlPath] of operations) {
      const reply = await call(method, urlPath, { authorization });
      expect([authorization, method, reply.status]).toEqual([authorization, method, 401]);
      expectDocumented(method, pathTemplate, reply);
    }
  }
  // Before routing: an undocumented method or path without the token is 401, not 405/404.
  expect((await call('POST', at(domain), { authorization: null })).status).toBe(401);
  expect((await call('GET', '/v1/other', { authorization: null })).status).toBe(401);
  // The scheme is case-insensitive (RFC 7235), as the description's http/bearer scheme says.
  expect((await call('GET', `${list}?state=issued`, { authorization: `bearer ${token}` })).status).toBe(200);
  expect((await store.keys('*')).sort()).toEqual(keysBefore);
});

test('PUT registers (202, queued, in the queue), idempotently; GET answers the queued status with the DNS pre-check (customer DNS: a scripted DNS server stand-in)', async () => {
  const pointing = name('pointing');
  const elsewhere = name('elsewhere');
  const silent = name('silent');
  dns.answers.set(pointing, { records: [{ name: pointing, type: 'CNAME', ttl: 60, data: EDGE_HOSTNAME }, { name: EDGE_HOSTNAME, type: 'A', ttl: 60, data: EDGE_ADDRESS }] });
  dns.answers.set(elsewhere, { records: [{ name: elsewhere, type: 'A', ttl: 60, data: '192.0.2.10' }] });
  dns.answers.set(silent, { records: [], silent: true });
  const expected: Record<string, { status: string; detail: RegExp }> = {
    [pointing]: { status: 'pointing', detail: new RegExp(`^resolves to ${EDGE_ADDRESS.replace(/\./g, '\\.')} via CNAME ${EDGE_HOSTNAME}`) },
    [elsewhere]: { status: 'not_pointing', detail: /192\.0\.2\.10/ },
    [silent]: { status: 'unknown', detail: /./ },
  };
  for (const [domain, dnsCheck] of Object.entries(expected)) {
    const put = await call('PUT', at(domain));
    expectDocumented('PUT', one, put);
    expect(put.status).toBe(202);
    expect(put.body).toMatchObject({ name: domain, state: 'queued', reason: null, notAfter: null, profile: 'classic', dns: { status: dnsCheck.status } });
    expect(put.body.dns.detail).toMatch(dnsCheck.detail);
    expect(await store.zscore(`${PREFIX}:edge:domain-queue`, domain)).not.toBeNull();
    expect(await store.zscore(`${PREFIX}:edge:domains:queued`, domain)).toBe('0');
    const get = await call('GET', at(domain));
    expectDocumented('GET', one, get);
    expect([get.status, get.body.state]).toEqual([200, 'queued']);
  }
  // Idempotent: a second PUT of a queued name changes nothing but answers the same.
  const again = await call('PUT', at(pointing));
  expectDocumented('PUT', one, again);
  expect([again.status, again.body.state]).toEqual([202, 'queued']);
  expect(await store.zcard(`${PREFIX}:edge:domains:queued`)).toBeGreaterThanOrEqual(3);
  // Names are normalised as a handshake's: lower case, no trailing dot.
  const mixed = await call('PUT', at(`Mixed-${run}.OpenAPI.Test.`));
  expectDocumented('PUT', one, mixed);
  expect(mixed.body.name).toBe(`mixed-${run}.openapi.test`);
  await call('DELETE', at(`mixed-${run}.openapi.test`));
});

test('400 for what cannot be a customer\'s host name and 409 for the edge\'s own, on PUT, GET and DELETE; 404 for an unknown name; nothing written', async () => {
  const keysBefore = (await store.keys('*')).sort();
  const bad: Array<[string, string]> = [['not..valid.example.com', 'empty label'], ['192.0.2.1', 'IP literal'], ['under_score.example.com', 'character'],
    [`${'a'.repeat(64)}.example.com`, '63'], ['localhost', 'single label'], ['*.example.com', 'wildcard'], ['-a.example.com', 'hyphen']];
  for (const method of ['PUT', 'GET', 'DELETE']) {
    for (const [domain, why] of bad) {
      const reply = await call(method, at(encodeURIComponent(domain)));
      expectDocumented(method, one, reply);
      expect([method, domain, reply.status]).toEqual([method, domain, 400]);
      expect(reply.body.reason).toContain(why);
    }
    const own = await call(method, at(EDGE_HOSTNAME.toUpperCase()));
    expectDocumented(method, one, own);
    expect([own.status, own.body.name]).toEqual([409, EDGE_HOSTNAME]);
  }
  // The path is percent-decoded once (by nginx): "%2541" is "%41", not a character to decode again.
  const twice = await call('PUT', at(`a%2541-${run}.openapi.test`));
  expectDocumented('PUT', one, twice);
  expect([twice.status, twice.body.reason]).toEqual([400, 'character not allowed in a hostname']);
  const unknown = await call('GET', at(name('never-seen')));
  expectDocumented('GET', one, unknown);
  expect(unknown.body).toEqual({ error: 'unknown domain', name: name('never-seen') });
  expect((await store.keys('*')).sort()).toEqual(keysBefore);
});

test('GET of an issued and an expired certificate (its notAfter moved into the past in the store\'s index), and of every state an issuer writes (written with edge.store.domain_status.set: no issuer runs here), as documented', async () => {
  const issued = name('issued');
  const notAfter = await storeCertificate(store, PREFIX, work, issued, 30);
  const got = await call('GET', at(issued));
  expectDocumented('GET', one, got);
  expect(got.body).toMatchObject({ name: issued, state: 'issued', dns: null, lastError: null, profile: 'classic' });
  expect(Date.parse(got.body.notAfter) / 1000).toBe(notAfter);
  expect(Date.parse(got.body.renewAt)).toBeLessThan(Date.parse(got.body.notAfter));

  const expired = name('expired');
  await storeCertificate(store, PREFIX, work, expired, 30);
  const expiredAt = await expireInIndex(store, PREFIX, expired);
  const old = await call('GET', at(expired));
  expectDocumented('GET', one, old);
  expect([old.body.state, Date.parse(old.body.notAfter) / 1000]).toEqual(['expired', expiredAt]);

  // As lua/edge/api/registration_queue.lua and lua/edge/acme/provider.lua write them.
  const next = Math.ceil(Date.now() / 1000) + 900;
  const written: Array<[string, Record<string, string | number | false>]> = [
    ['issuing', { reason: false }],
    ['failing', { last_error: 'ACME order for x failed: urn:ietf:params:acme:error:connection', next_attempt_at: next }],
    ['cooling_off', { reason: 'a recent order of this name failed; waiting before the next', next_attempt_at: next }],
    ['not_allowed', { reason: 'the domain check does not allow this name' }],
    ['dns_not_pointing', { reason: 'the name does not point at the edge yet', dns: 'resolves to 192.0.2.10', dns_attempts: 1, next_attempt_at: next }],
  ];
  for (const [state, fields] of written) {
    const domain = name(state.replace(/_/g, '-'));
    await api.setState(domain, state, fields);
    for (const instance of [api, plain]) {
      const reply = await call('GET', at(domain), { port: instance.port });
      expectDocumented('GET', one, reply);
      expect([state, reply.status, reply.body.state]).toEqual([state, 200, state]);
      if (fields.next_attempt_at) expect(Date.parse(reply.body.nextAttemptAt) / 1000).toBe(next);
      if (fields.last_error) expect(reply.body.lastError).toBe(fields.last_error);
    }
    // Without the pre-check, the dns an issuer stored; with it, a lookup (this name: NXDOMAIN).
    const stored = (await call('GET', at(domain), { port: plain.port })).body.dns;
    expect(stored).toEqual(fields.dns ? { status: 'not_pointing', detail: fields.dns } : null);
    expect((await call('GET', at(domain))).body.dns).toMatchObject({ status: 'not_pointing', detail: expect.stringMatching(/no such name/) });
  }
});

test('GET /v1/domains: every state listable, paged to the end without repeats; issued and expired soonest expiry first with notAfter; 400 for bad parameters', async () => {
  for (const state of spec.components.schemas.State.enum as string[]) {
    const reply = await call('GET', `${list}?state=${state}`);
    expectDocumented('GET', list, reply);
    expect([state, reply.status]).toEqual([state, 200]);
    for (const item of reply.body.domains) expect(item.state).toBe(state);
  }
  const empty = await call('GET', `${list}?state=issuing&cursor=${encodeURIComponent('~')}`);
  expectDocumented('GET', list, empty);
  expect(empty.body).toEqual({ domains: [], nextCursor: null });

  // Name order, cursor = the last name: five queued names in pages of two.
  const queued = [1, 2, 3, 4, 5].map((i) => name(`page${i}`));
  for (const domain of queued) expect((await call('PUT', at(domain))).status).toBe(202);
  const pages = async (state: string, limit: number) => {
    const names: string[] = [];
    const items: any[] = [];
    let cursor: string | null = null;
    let calls = 0;
    do {
      const reply: Reply = await call('GET', `${list}?state=${state}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expectDocumented('GET', list, reply);
      expect(reply.body.domains.length).toBeLessThanOrEqual(limit);
      items.push(...reply.body.domains);
      names.push(...reply.body.domains.map((d: any) => d.name));
      cursor = reply.body.nextCursor;
      calls++;
    } while (cursor !== null && calls < 100);
    expect(new Set(names).size).toBe(names.length);
    return { names, items, calls };
  };
  const paged = await pages('queued', 2);
  const all = (await store.zrange(`${PREFIX}:edge:domains:queued`, '0', '-1')).sort();
  expect(paged.names).toEqual(all);
  expect(paged.calls).toBe(Math.ceil(all.length / 2));
  for (const domain of queued) expect(paged.names).toContain(domain);
  for (const item of paged.items) expect(item).not.toHaveProperty('notAfter');

  // Expiry order, cursor = an offset: certificates of 10, 20 and 40 days.
  for (const days of [40, 10, 20]) await storeCertificate(store, PREFIX, work, name(`days${String(days)}`), days);
  const issued = await pages('issued', 1);
  const expiries = issued.items.map((i) => Date.parse(i.notAfter));
  expect(expiries).toEqual([...expiries].sort((a, b) => a - b));
  expect(issued.names.filter((n) => /days\d+/.test(n))).toEqual(['10', '20', '40'].map((d) => name(`days${d}`)));
  const expired = await pages('expired', 10);
  expect(expired.names).toContain(name('expired'));
  for (const item of [...issued.items, ...expired.items]) expect(item.notAfter).toMatch(/Z$/);

  for (const query of ['', '?state=bogus', '?state=issued&state=queued', '?state=issued&limit=0', '?state=issued&limit=1001',
    '?state=issued&limit=1.5', '?state=queued&limit=x', '?state=issued&cursor=abc', '?state=expired&cursor=-1']) {
    const reply = await call('GET', `${list}${query}`);
    expectDocumented('GET', list, reply);
    expect([query, reply.status]).toEqual([query, 400]);
  }
  expect((await call('GET', `${list}?state=issued&limit=5000`)).body.parameter).toBe('limit');
  expect((await call('GET', `${list}?state=issued&cursor=abc`)).body.parameter).toBe('cursor');
  expect((await call('GET', `${list}`)).body.parameter).toBe('state');
});

test('DELETE removes the certificate, the status and the queue entry (then GET is 404); an unknown name is 200 with certificate false', async () => {
  const domain = name('deleted');
  await storeCertificate(store, PREFIX, work, domain, 30);
  await api.setState(domain, 'issued', {});
  await store.set(`${PREFIX}:edge:order:${domain}`, '1');
  const reply = await call('DELETE', at(domain));
  expectDocumented('DELETE', one, reply);
  expect(reply.body).toEqual({ name: domain, deleted: true, certificate: true });
  // All that is left is the mark that keeps orders (and late writes) off for 5 minutes.
  expect((await store.keys(`*${domain}*`))).toEqual([`${PREFIX}:edge:order:${domain}`]);
  expect(await store.get(`${PREFIX}:edge:order:${domain}`)).toBe('deleted');
  expect(await store.ttl(`${PREFIX}:edge:order:${domain}`)).toBeGreaterThan(290);
  for (const index of ['cert-expiry', 'renew-at', 'renew-due', 'alarm-at', 'domain-queue', 'domains:issued']) {
    expect([index, await store.zscore(`${PREFIX}:edge:${index}`, domain)]).toEqual([index, null]);
  }
  expect((await call('GET', at(domain))).status).toBe(404);
  const queued = name('page1');
  const removed = await call('DELETE', at(queued));
  expect(removed.body).toEqual({ name: queued, deleted: true, certificate: false });
  expect(await store.zscore(`${PREFIX}:edge:domain-queue`, queued)).toBeNull();
  expect((await call('GET', at(queued))).status).toBe(404);
  const unknown = await call('DELETE', at(name('never-there')));
  expectDocumented('DELETE', one, unknown);
  expect(unknown.body).toEqual({ name: name('never-there'), deleted: true, certificate: false });
});

test('503 on every operation while Redis is down (stopped by PID); nothing changes, and the API answers again once it is back', async () => {
  const domain = name('during-outage');
  const kept = name('kept');
  await storeCertificate(store, PREFIX, work, kept, 30);
  await store.quit();
  await redis.stop();
  try {
    const operations: Array<[string, string, string]> = [['PUT', one, at(domain)], ['GET', one, at(domain)], ['DELETE', one, at(kept)], ['GET', list, `${list}?state=issued`], ['GET', list, `${list}?state=queued`]];
    for (const [method, pathTemplate, urlPath] of operations) {
      const reply = await call(method, urlPath);
      expect([method, urlPath, reply.status]).toEqual([method, urlPath, 503]);
      expectDocumented(method, pathTemplate, reply);
    }
  } finally {
    await redis.start();
    store = await connectStore();
  }
  const back = await call('GET', at(kept));
  expect([back.status, back.body.state]).toEqual([200, 'issued']);
  expect((await call('GET', at(domain))).status).toBe(404);
});

test('every documented (operation, status) was answered as documented', () => {
  const documented: string[] = [];
  for (const [pathTemplate, item] of Object.entries<any>(spec.paths)) {
    for (const method of documentedMethods(pathTemplate)) {
      for (const status of Object.keys(item[method.toLowerCase()].responses)) documented.push(`${method} ${pathTemplate} ${status}`);
    }
  }
  expect(documented.filter((d) => !seen.has(d))).toEqual([]);
  expect([...seen].filter((s) => !documented.includes(s))).toEqual([]);
});
