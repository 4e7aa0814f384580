import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import Redis from 'ioredis';
import { LUA_ROOT } from '../../charts/lua-sources';

/**
 * The Redis script that writes or deletes a certificate entry, records the change in the
 * store's change feed (which every edge worker polls) and keeps the renewal index in step: the
 * same one the edge runs.
 */
const RECORD_CERT_CHANGE = readFileSync(path.join(LUA_ROOT, 'edge', 'store', 'record_cert_change.lua'), 'utf8');

/** The renewal index's keys, as lua/edge/store/cert_changes.lua names them (INDEX, state_key). */
const RENEWAL_INDEX_KEYS = ['edge:renew-due', 'edge:renew-at', 'edge:cert-expiry', 'edge:alarm-at'];

/** notBefore and notAfter (Unix seconds) of the certificate in an entry's JSON, or [] when it has none readable. */
function entryValidity(value: string): string[] {
  try {
    const entry = JSON.parse(value) as { cert_pem?: string; fullchain_pem?: string };
    const cert = new X509Certificate(entry.cert_pem ?? entry.fullchain_pem ?? '');
    return [cert.validFrom, cert.validTo].map((d) => String(Math.floor(Date.parse(d) / 1000)));
  } catch {
    return [];
  }
}

/**
 * Writes (value: the entry's JSON) or deletes (no value) the certificate entry of a name, and
 * records the change and its renewal index entries, as the edge's storage adapter does.
 * Returns the number of entries changed, or -2 when a write is refused because the domains
 * API deleted the name moments ago (record_cert_change.lua).
 */
export async function writeCertificateEntry(redis: Redis, prefix: string, domain: string, value?: string): Promise<number> {
  const key = (name: string) => `${prefix}:${name}`;
  const args = value === undefined ? [domain] : [domain, value, ...entryValidity(value)];
  return await redis.eval(RECORD_CERT_CHANGE, 10, key(`${domain}:latest`), key('edge:cert-seq'),
    key('edge:cert-changes'), key('edge:cert-changes-trimmed'), ...RENEWAL_INDEX_KEYS.map(key),
    key(`edge:renewal:${domain}`), key(`edge:order:${domain}`), ...args) as number;
}

/** Connection settings: a redis:// or rediss:// (TLS) URL, the password kept apart. */
export interface StoreConnection {
  readonly url: string;
  readonly password?: string;
  /** The environment's key prefix (its name). */
  readonly prefix: string;
}

/**
 * Deletes certificates in an environment's store directly (keys "<prefix>:<domain>:latest"), as
 * the edge's storage adapter does: for tests that change the store behind the edge's back. People
 * use the domains API (`npm run certs`), which needs no access to the store.
 */
export class CertStoreClient {
  private constructor(private readonly redis: Redis, private readonly prefix: string) {
    // Errors reach the caller through the commands; the event only must not be unhandled.
    redis.on('error', () => undefined);
  }

  static connect(connection: StoreConnection): CertStoreClient {
    const url = new URL(connection.url);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`not a redis:// or rediss:// URL: "${connection.url}"`);
    if (url.password) throw new Error('put the password in StoreConnection.password, not in the URL');
    // "[::1]" in a URL is the host ::1.
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const redis = new Redis({
      host,
      port: Number(url.port || 6379),
      password: connection.password,
      // rediss://: TLS, the server's certificate verified; SNI carries host names only (RFC 6066).
      tls: url.protocol === 'rediss:' ? (isIP(host) ? {} : { servername: host }) : undefined,
      lazyConnect: true,
      connectTimeout: 3000,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    return new CertStoreClient(redis, connection.prefix);
  }

  async open(): Promise<void> {
    await this.redis.connect();
    await this.redis.ping();
  }

  async close(): Promise<void> {
    // ioredis' disconnect() arms a timer (2 s) that only the socket's 'close' event clears: on a
    // connection already closed it would keep the process alive for 2 s after everything is done.
    if (this.redis.status === 'end') return;
    this.redis.disconnect();
  }

  /**
   * Deletes a certificate and its order mark: every edge pod stops serving it within its change
   * poll interval, and the next handshake for the name orders a new one.
   */
  async delete(domain: string): Promise<boolean> {
    const certificates = await writeCertificateEntry(this.redis, this.prefix, domain);
    const marks = await this.redis.del(`${this.prefix}:edge:order:${domain}`);
    return certificates + marks > 0;
  }
}
