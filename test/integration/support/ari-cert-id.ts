import { execFileSync } from 'node:child_process';

/**
 * The ARI certificate identifier (RFC 9773 4.1) of a PEM certificate, computed apart from our Lua
 * (with the openssl command): base64url(authority key identifier) "." base64url(the DER
 * content octets of the serial number, a zero octet first when its high bit is set).
 */
export function ariCertId(pem: string): string {
  const text = execFileSync('openssl', ['x509', '-noout', '-ext', 'authorityKeyIdentifier', '-serial'], { input: pem, encoding: 'utf8' });
  const keyId = text.match(/Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/i)?.[1];
  const serialHex = text.match(/serial=([0-9A-F]+)/i)?.[1];
  if (!keyId || !serialHex) throw new Error(`ariCertId: no authority key identifier or serial in: ${text}`);
  let serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  if (serial[0] >= 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${Buffer.from(keyId.replace(/:/g, ''), 'hex').toString('base64url')}.${serial.toString('base64url')}`;
}
