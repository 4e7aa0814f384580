import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { writeCertificateEntry } from '../../../bin/certs/cert-store-client';

/**
 * Stores a self-signed certificate for domain, valid for `days` days from now, as the edge's
 * storage adapter does (the entry, its change record and its renewal index entries, through the
 * same Redis script). Returns its notAfter (Unix seconds).
 */
export async function storeCertificate(redis: Redis, prefix: string, dir: string, domain: string, days: number): Promise<number> {
  const base = path.join(dir, `cert-${domain}`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', String(days), '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`,
    '-keyout', `${base}.key`, '-out', `${base}.pem`], { stdio: 'ignore' });
  const cert = readFileSync(`${base}.pem`, 'utf8');
  await writeCertificateEntry(redis, prefix, domain, JSON.stringify({
    fullchain_pem: cert, cert_pem: cert, privkey_pem: readFileSync(`${base}.key`, 'utf8'), expiry: Math.floor(Date.now() / 1000) + days * 86400,
  }));
  return Number(await redis.hget(`${prefix}:edge:renewal:${domain}`, 'not_after'));
}

/**
 * Makes a stored certificate's notAfter the past in the store's index and renewal state (the
 * CA of these tests cannot sign a certificate that has already expired): what the API reads to
 * call it expired. Returns the notAfter written.
 */
export async function expireInIndex(redis: Redis, prefix: string, domain: string, secondsAgo = 60): Promise<number> {
  const notAfter = Math.floor(Date.now() / 1000) - secondsAgo;
  await redis.hset(`${prefix}:edge:renewal:${domain}`, 'not_after', notAfter);
  await redis.zadd(`${prefix}:edge:cert-expiry`, notAfter, domain);
  return notAfter;
}
