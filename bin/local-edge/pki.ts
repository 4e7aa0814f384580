import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** A certificate and its key, as file paths. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway CA (ECDSA P-256, 7 days) in dir, made once. */
export function makeCa(dir: string, name: string): KeyPair {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  if (!existsSync(pair.cert)) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7',
      '-subj', `/CN=${name} (throwaway, local edge)`, '-keyout', pair.key, '-out', pair.cert]);
  }
  return pair;
}

/** A server certificate for names and IPs, signed by ca. */
export function makeServerCert(dir: string, name: string, ca: KeyPair, sans: string[]): KeyPair {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  if (!existsSync(pair.cert)) {
    const csr = path.join(dir, `${name}.csr`);
    const ext = path.join(dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:false\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`,
      '-keyout', pair.key, '-out', csr]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '7',
      '-extfile', ext, '-out', pair.cert]);
  }
  return pair;
}

/** A self-signed certificate (the fallback nginx serves when it has none for a name). */
export function makeSelfSigned(dir: string, name: string, commonName: string): KeyPair {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  if (!existsSync(pair.cert)) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7',
      '-subj', `/CN=${commonName}`, '-keyout', pair.key, '-out', pair.cert]);
    chmodSync(pair.key, 0o644); // read by nginx workers (www-data); a throwaway key that protects nothing
  }
  return pair;
}
