import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createConnection, isIP } from 'node:net';
import * as path from 'node:path';
import Redis, { ReplyError } from 'ioredis';
import { LUA_ROOT } from '../../charts/lua-sources';

/**
 * The Redis script that writes or deletes a certificate entry and records the change in the
 * store's change feed, which every edge worker polls (the same one the edge runs).
 */
const RECORD_CERT_CHANGE = readFileSync(path.join(LUA_ROOT, 'edge', 'store', 'record_cert_change.lua'), 'utf8');

/**
 * Writes (value: the entry's JSON) or deletes (no value) the certificate entry of a name, and
 * records the change, as the edge's storage adapter does. Returns the number of entries changed.
 */
export async function writeCertificateEntry(redis: Redis, prefix: string, domain: string, value?: string): Promise<number> {
  const key = (name: string) => `${prefix}:${name}`;
  const args = value === undefined ? [domain] : [domain, value];
  return await redis.eval(RECORD_CERT_CHANGE, 4, key(`${domain}:latest`), key('edge:cert-seq'),
    key('edge:cert-changes'), key('edge:cert-changes-trimmed'), ...args) as number;
}

/** A certificate as lua-resty-auto-ssl stores it, described (its private key is never read out). */
export interface StoredCertificate {
  readonly domain: string;
  readonly subjectAltNames: string[];
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Whole days from now until notAfter (negative once expired). */
  readonly daysLeft: number;
}

/** Connection settings: a redis:// or rediss:// (TLS) URL, the password kept apart. */
export interface StoreConnection {
  readonly url: string;
  readonly password?: string;
  /** The environment's key prefix (its name). */
  readonly prefix: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Reads and deletes certificates in an environment's store (keys "<prefix>:<domain>:latest"). */
export class CertStoreClient {
  /** The last connection error (AUTH failures arrive as an event, before connect() rejects). */
  private lastError?: Error;

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly now: () => Date,
    /** Where it connects, and whether over TLS (to explain a failed handshake). */
    private readonly endpoint: { host: string; port: number; tls: boolean },
  ) {
    redis.on('error', (error: Error) => { this.lastError = error; });
  }

  static connect(connection: StoreConnection, now: () => Date = () => new Date()): CertStoreClient {
    const url = new URL(connection.url);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`--redis must be a redis:// or rediss:// URL, got "${connection.url}"`);
    if (url.password) throw new Error('put the password in REDIS_AUTH, not in the URL');
    // "[::1]" in a URL is the host ::1.
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port || 6379);
    const tls = url.protocol === 'rediss:';
    const redis = new Redis({
      host,
      port,
      password: connection.password,
      // rediss://: TLS, the server's certificate verified against the system's CAs and its name
      // (or, for an IP address, its IP SAN). SNI carries host names only (RFC 6066): an IP
      // address as servername makes Node warn, so none is set for one.
      tls: tls ? (isIP(host) ? {} : { servername: host }) : undefined,
      lazyConnect: true,
      connectTimeout: 3000,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    return new CertStoreClient(redis, connection.prefix, now, { host, port, tls });
  }

  async open(): Promise<void> {
    try {
      await this.redis.connect();
      await this.redis.ping();
    } catch (error) {
      const cause = this.lastError ?? (error as Error);
      // A Redis reply (WRONGPASS, NOAUTH...) means TLS worked; anything else over TLS is explained.
      if (this.endpoint.tls && !(cause instanceof ReplyError)) throw await explainTlsFailure(this.endpoint.host, this.endpoint.port, cause);
      throw cause;
    }
  }

  async close(): Promise<void> {
    // ioredis' disconnect() arms a timer (2 s) that only the socket's 'close' event clears: on a
    // connection already closed (a refused AUTH, a failed TLS handshake) it would keep the
    // process alive for 2 s after everything is done.
    if (this.redis.status === 'end') return;
    this.redis.disconnect();
  }

  private key(domain: string): string {
    return `${this.prefix}:${domain}:latest`;
  }

  describe(domain: string, json: string): StoredCertificate {
    const stored = JSON.parse(json) as { cert_pem?: string; fullchain_pem?: string };
    const pem = stored.cert_pem ?? stored.fullchain_pem;
    if (!pem) throw new Error(`${domain}: stored entry has no certificate`);
    const cert = new X509Certificate(pem);
    const notAfter = new Date(cert.validTo);
    return {
      domain,
      subjectAltNames: (cert.subjectAltName ?? '').split(', ').filter(Boolean).map((n) => n.replace(/^DNS:/, '')),
      issuer: cert.issuer.replace(/\n/g, ', '),
      serial: cert.serialNumber.toLowerCase(),
      notBefore: new Date(cert.validFrom),
      notAfter,
      daysLeft: Math.floor((notAfter.getTime() - this.now().getTime()) / DAY_MS),
    };
  }

  /** Every stored certificate, soonest expiry first. SCAN, so a large store is not blocked. */
  async list(): Promise<StoredCertificate[]> {
    const keys: string[] = [];
    const pattern = `${this.prefix}:*:latest`;
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    const certificates: StoredCertificate[] = [];
    for (const key of keys.sort()) {
      const json = await this.redis.get(key);
      if (json) certificates.push(this.describe(key.slice(this.prefix.length + 1, -':latest'.length), json));
    }
    return certificates.sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime());
  }

  async get(domain: string): Promise<StoredCertificate | undefined> {
    const json = await this.redis.get(this.key(domain));
    return json ? this.describe(domain, json) : undefined;
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

/**
 * Why a TLS connection to host:port failed, as an error to show: a plain (non-TLS) Redis never
 * completes the handshake, so ioredis reports only "connect ETIMEDOUT". A plain-text PING tells
 * the cases apart: a Redis reply means the server does not speak TLS on that port.
 */
export async function explainTlsFailure(host: string, port: number, cause: Error, timeoutMs = 2000): Promise<Error> {
  const where = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  const probe = await new Promise<{ connected: boolean; reply?: string }>((resolve) => {
    let connected = false;
    let data = '';
    const socket = createConnection({ host, port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ connected, reply: data ? data.split('\r\n')[0] : undefined });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write('PING\r\n');
    });
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) done();
    });
    socket.once('error', done);
    socket.once('close', done);
  });
  // Not even a TCP connection: the error says why (refused, unreachable, unknown host).
  if (!probe.connected) return cause;
  if (probe.reply !== undefined && /^[+-]/.test(probe.reply)) {
    return new Error(`TLS failed: ${where} is a plain (non-TLS) Redis, it answered a plain-text PING with "${probe.reply.slice(0, 60)}". `
      + `Use redis://${where} for it, or the server's TLS port with rediss://.`);
  }
  return new Error(`TLS failed: the TLS handshake with ${where} did not complete (${cause.message})`);
}
