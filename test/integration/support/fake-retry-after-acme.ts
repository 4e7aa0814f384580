import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { KeyPair } from '../../../bin/local-edge/pki';

/**
 * What the fake changes in pebble's answers:
 * - `pending-once`: the first poll of each authorization (its 2nd POST) says "pending" with
 *   Retry-After, so a client that honours it waits that long before the next poll;
 * - `pending-always`: every poll of an authorization says "pending" with Retry-After (the order
 *   can only end at the client's deadline);
 * - `rate-limited`: newOrder answers 429 rateLimited with Retry-After (the nonce pebble issued
 *   for that request is passed on, as a real server's would be).
 * - `pass`: nothing.
 * Independently, `offerProfiles` adds `meta.profiles` and `renewalInfo` to the directory (pebble
 * 2.4 has neither; it ignores the fields a client then sends), and answers renewalInfo (ARI, RFC
 * 9773) itself from `renewalWindows`; every newOrder payload is kept.
 */
export type FakeMode = 'pass' | 'pending-once' | 'pending-always' | 'rate-limited';

/**
 * NOT an ACME server: a stand-in front of pebble, over HTTPS, that adds Retry-After where
 * pebble 2.4 sends none (its authorizations and orders carry no Retry-After). It forwards every
 * request to pebble with the Host header unchanged, so pebble's URLs (and the URLs it expects
 * in JWS headers) are the front's; only the answers named by `mode` are altered.
 */
export class FakeRetryAfterAcme {
  mode: FakeMode = 'pass';
  /** The Retry-After value sent (delay-seconds or an HTTP date). */
  retryAfter = '1';
  /** Every POST to an authorization URL: path and when (ms since epoch). */
  readonly authzPolls: Array<{ path: string; at: number }> = [];
  /** Whether the directory advertises profiles ("classic", "shortlived") and renewalInfo. */
  offerProfiles = false;
  /** The decoded JWS payload of every newOrder request. */
  readonly newOrderPayloads: Array<Record<string, unknown>> = [];
  /** ARI's suggested window by certificate identifier; an identifier not here is answered 404, as a CA answers one it does not know. */
  readonly renewalWindows = new Map<string, { start: Date; end: Date }>();
  /** The Retry-After of renewalInfo answers (seconds). */
  renewalInfoRetryAfter = '21600';
  /** Every certificate identifier renewalInfo was asked for. */
  readonly renewalInfoRequests: string[] = [];
  private server?: https.Server;
  private readonly sockets = new Set<{ destroy(): void }>();
  port = 0;

  constructor(private readonly pebblePort: number, private readonly pebbleCa: string, private readonly tls: KeyPair) {}

  get directoryUrl(): string {
    return `https://localhost:${this.port}/dir`;
  }

  async start(): Promise<number> {
    this.server = https.createServer({ key: readFileSync(this.tls.key), cert: readFileSync(this.tls.cert) },
      (req, res) => this.handle(req, res));
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  private handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      if (this.offerProfiles && req.method === 'GET' && url.startsWith('/renewal-info/')) {
        const certId = decodeURIComponent(url.slice('/renewal-info/'.length));
        this.renewalInfoRequests.push(certId);
        const window = this.renewalWindows.get(certId);
        if (!window) {
          res.writeHead(404, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:malformed', detail: 'FakeRetryAfterAcme: unknown certificate', status: 404 }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'retry-after': this.renewalInfoRetryAfter });
        res.end(JSON.stringify({ suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } }));
        return;
      }
      const isAuthz = req.method === 'POST' && url.startsWith('/authZ/');
      let pollNumber = 0;
      if (isAuthz) {
        this.authzPolls.push({ path: url, at: Date.now() });
        pollNumber = this.authzPolls.filter((p) => p.path === url).length;
      }
      if (req.method === 'POST' && url === '/order-plz') {
        try {
          const jws = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          this.newOrderPayloads.push(JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')));
        } catch {
          this.newOrderPayloads.push({ unreadable: true });
        }
      }
      const upstream = https.request({
        host: '127.0.0.1', port: this.pebblePort, path: url, method: req.method, headers: req.headers,
        ca: readFileSync(this.pebbleCa), servername: 'localhost', agent: false,
      }, (up) => {
        const body: Buffer[] = [];
        up.on('data', (c) => body.push(c));
        up.on('end', () => {
          let text = Buffer.concat(body).toString('utf8');
          let status = up.statusCode ?? 502;
          const headers: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(up.headers)) {
            if (v !== undefined && !['content-length', 'transfer-encoding', 'connection'].includes(k)) headers[k] = v;
          }
          if (isAuthz && status === 200 && (this.mode === 'pending-always' ? pollNumber >= 2 : this.mode === 'pending-once' && pollNumber === 2)) {
            const doc = JSON.parse(text);
            doc.status = 'pending';
            text = JSON.stringify(doc);
            headers['retry-after'] = this.retryAfter;
          }
          if (this.offerProfiles && req.method === 'GET' && url === '/dir' && status === 200) {
            const dir = JSON.parse(text);
            dir.meta = { ...(dir.meta ?? {}), profiles: { classic: 'the default', shortlived: 'six days' } };
            dir.renewalInfo = `https://${req.headers.host}/renewal-info`;
            text = JSON.stringify(dir);
          }
          if (this.mode === 'rate-limited' && req.method === 'POST' && url === '/order-plz') {
            status = 429;
            headers['content-type'] = 'application/problem+json';
            headers['retry-after'] = this.retryAfter;
            delete headers.location;
            text = JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'FakeRetryAfterAcme: too many new orders', status: 429 });
          }
          res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        });
      });
      upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      upstream.end(Buffer.concat(chunks));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
