import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { normalizeSerial } from '../../../bin/local-edge/pebble-server';

/** What a TLS client saw of one connection to the edge. */
export interface TlsProbeResult {
  /** The TLS handshake completed. */
  readonly ok: boolean;
  /** Why the connection or the request failed (undefined when everything worked). */
  readonly error?: string;
  /** From the start of the TCP connect to the end of the TLS handshake (or to the failure). */
  readonly handshakeMs: number;
  /** From the start of the TCP connect to the end of the HTTP response, if one was asked for. */
  readonly totalMs: number;
  /** From the start of the TCP connect to the first byte of the HTTP response (time to first byte), if one was asked for. */
  readonly firstByteMs?: number;
  readonly certificate?: {
    /** Lower-case hex without leading zeros, as pebble logs it. */
    readonly serial: string;
    readonly subjectCN?: string;
    readonly issuerCN?: string;
    readonly subjectAltName?: string;
    readonly fingerprint256: string;
  };
  /** The chain verifies against `ca` (when given). */
  readonly chainVerified: boolean;
  /** The chain verifies against `ca` and the certificate is valid for `hostnameToVerify` (default: the SNI). */
  readonly verified: boolean;
  readonly verifyError?: string;
  readonly response?: { readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: string };
}

export interface TlsProbeOptions {
  readonly port: number;
  readonly host?: string;
  /** Server name sent in the SNI extension; undefined sends none. */
  readonly servername?: string;
  /** Sends a PROXY protocol v1 header before the TLS handshake, as the load balancer does. */
  readonly proxyFrom?: { readonly address: string; readonly port: number };
  /** PEM bundle the certificate must chain to (pebble's issuing chain). */
  readonly ca?: string;
  /** Name the certificate must be valid for; defaults to the SNI. */
  readonly hostnameToVerify?: string;
  /** After the handshake, GET this path over HTTP/1.1 (Host: the SNI unless hostHeader is set). */
  readonly request?: { readonly path: string; readonly hostHeader?: string; readonly headers?: Record<string, string> };
  /** Gives up after this long. @default 60000 */
  readonly timeoutMs?: number;
}


/**
 * Connects to a port (the load balancer, or an instance directly with a PROXY header), does a
 * TLS handshake with the given SNI (or none), and reports the certificate the server chose,
 * whether it verifies, the handshake time and, optionally, an HTTP response. Never throws:
 * failures are in `error`. Asynchronous on purpose: the load balancer and the domain-check
 * stand-in run in this same Node process.
 */
export function tlsProbe(o: TlsProbeOptions): Promise<TlsProbeResult> {
  const host = o.host ?? '127.0.0.1';
  const started = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - started) / 1e6;

  return new Promise((resolve) => {
    let settled = false;
    let handshakeMs = 0;
    let partial: Partial<TlsProbeResult> = {};
    let raw: net.Socket | undefined;
    let secure: tls.TLSSocket | undefined;
    const finish = (result: Partial<TlsProbeResult>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure?.destroy();
      raw?.destroy();
      resolve({
        ok: false, handshakeMs: handshakeMs || ms(), totalMs: ms(), chainVerified: false, verified: false,
        ...partial, ...result,
      });
    };
    const timer = setTimeout(() => finish({ error: `timed out after ${o.timeoutMs ?? 60000} ms` }), o.timeoutMs ?? 60000);

    const startTls = (socket?: net.Socket) => {
      secure = tls.connect({
        ...(socket ? { socket } : { port: o.port, host }),
        // Node sends SNI only when `servername` is set; '' means none.
        servername: o.servername ?? '',
        ca: o.ca,
        rejectUnauthorized: false,
        // Always a full handshake: no session resumption between probes.
        session: undefined,
        ALPNProtocols: ['http/1.1'],
      });
      secure.once('error', (error) => finish({ error: `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`.trim() }));
      secure.once('secureConnect', () => {
        handshakeMs = ms();
        const peer = secure!.getPeerCertificate();
        const expected = o.hostnameToVerify ?? o.servername;
        const nameError = expected && peer && peer.raw ? tls.checkServerIdentity(expected, peer) : undefined;
        const chainVerified = Boolean(o.ca) && secure!.authorized;
        partial = {
          ok: true,
          handshakeMs,
          certificate: peer && peer.raw ? {
            serial: normalizeSerial(peer.serialNumber),
            subjectCN: first(peer.subject?.CN),
            issuerCN: first(peer.issuer?.CN),
            subjectAltName: peer.subjectaltname,
            fingerprint256: peer.fingerprint256,
          } : undefined,
          chainVerified,
          verified: chainVerified && expected !== undefined && nameError === undefined,
          verifyError: !o.ca ? 'no CA given' : !secure!.authorized ? String(secure!.authorizationError) : nameError?.message,
        };
        if (!o.request) {
          finish({});
          return;
        }
        const req = http.request({
          // No agent: the request runs on this very connection.
          createConnection: () => secure!,
          method: 'GET',
          path: o.request.path,
          headers: { ...o.request.headers, Host: o.request.hostHeader ?? o.servername ?? host, Connection: 'close' },
        }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => { body += d; });
          res.on('end', () => finish({ response: { status: res.statusCode ?? 0, headers: res.headers, body } }));
          res.on('error', (error) => finish({ error: `response: ${error.message}` }));
        });
        req.on('error', (error) => finish({ error: `request: ${error.message}` }));
        // The first application data after the request is the response's first byte (the
        // parser's own 'data' listener is attached as the request gets its socket).
        secure!.prependOnceListener('data', () => { partial = { ...partial, firstByteMs: ms() }; });
        req.end();
      });
    };

    if (o.proxyFrom) {
      raw = net.connect({ port: o.port, host }, () => {
        raw!.write(`PROXY TCP4 ${o.proxyFrom!.address} ${host} ${o.proxyFrom!.port} ${o.port}\r\n`);
        startTls(raw);
      });
      raw.once('error', (error) => finish({ error: `connect: ${error.message}` }));
    } else {
      startTls();
    }
  });
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
