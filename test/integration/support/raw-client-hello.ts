import { randomBytes } from 'node:crypto';
import * as net from 'node:net';

/**
 * A raw TLS 1.2 ClientHello whose server_name extension carries `hostName` byte for byte.
 * Node's TLS client (OpenSSL) refuses to send a server name over 255 bytes, so a test that needs
 * what any client can send builds the record itself. Offers ECDHE with AES-GCM (ECDSA and RSA),
 * X25519 and P-256, and the usual signature algorithms: enough for the edge to answer a valid
 * name with its ServerHello.
 */
export function clientHelloWithServerName(hostName: Buffer): Buffer {
  const u8 = (n: number) => Buffer.from([n & 0xff]);
  const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  const u24 = (n: number) => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  const vector16 = (...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    return Buffer.concat([u16(body.length), body]);
  };
  const extension = (type: number, ...parts: Buffer[]) => Buffer.concat([u16(type), vector16(...parts)]);

  const extensions = Buffer.concat([
    // server_name: a ServerNameList of one host_name (type 0).
    extension(0x0000, vector16(u8(0), vector16(hostName))),
    // supported_groups: x25519, secp256r1.
    extension(0x000a, vector16(u16(0x001d), u16(0x0017))),
    // ec_point_formats: uncompressed.
    extension(0x000b, u8(1), u8(0)),
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    extension(0x000d, vector16(u16(0x0403), u16(0x0804), u16(0x0401))),
  ]);
  const body = Buffer.concat([
    u16(0x0303), // legacy_version: TLS 1.2
    randomBytes(32),
    u8(0), // no session id
    vector16(u16(0xc02b), u16(0xc02f)), // ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256
    u8(1), u8(0), // compression: null only
    vector16(extensions),
  ]);
  const handshake = Buffer.concat([u8(1), u24(body.length), body]); // client_hello
  return Buffer.concat([u8(0x16), u16(0x0301), u16(handshake.length), handshake]);
}

/** What the server sent back to a raw ClientHello: its first record, read as far as needed. */
export interface RawHelloReply {
  /** A ServerHello came back: the handshake went on. */
  readonly serverHello: boolean;
  /** A TLS alert came back: its description (112 = unrecognized_name, 50 = decode_error...). */
  readonly alert?: number;
  /** Nothing came back before the connection closed or the wait ended. */
  readonly nothing: boolean;
}

/**
 * Connects, sends the PROXY protocol v1 header (when given, as the load balancer does) and the
 * ClientHello, reads the first record back, and closes the connection. Never throws.
 */
export function sendClientHello(o: {
  port: number;
  hello: Buffer;
  proxyFrom?: { address: string; port: number };
  timeoutMs?: number;
}): Promise<RawHelloReply> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const socket = net.connect({ port: o.port, host: '127.0.0.1' });
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const contentType = received[0];
      resolve({
        serverHello: contentType === 0x16 && received[5] === 0x02,
        alert: contentType === 0x15 && received.length >= 7 ? received[6] : undefined,
        nothing: received.length === 0,
      });
    };
    const timer = setTimeout(finish, o.timeoutMs ?? 5000);
    socket.once('connect', () => {
      if (o.proxyFrom) socket.write(`PROXY TCP4 ${o.proxyFrom.address} 127.0.0.1 ${o.proxyFrom.port} ${o.port}\r\n`);
      socket.write(o.hello);
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      // A record header (5 bytes) and the first bytes of its body tell what it is.
      if (received.length >= 7) finish();
    });
    socket.once('error', finish);
    socket.once('close', finish);
  });
}
