import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { KeyPair } from './pki';

export interface OriginServerOptions {
  /** Certificate (for the origin's host name, from a test CA) and key it serves. */
  readonly tls: KeyPair;
  /** Loopback address it listens on: several stand-ins can share a port on 127.0.0.1, 127.0.0.2... @default "127.0.0.1" */
  readonly address?: string;
}

/** What the stand-in saw since it started (or since resetCounters()). */
export interface OriginCounters {
  /** TCP connections accepted. */
  connections: number;
  /** TLS handshakes completed, and how many of them resumed an earlier session. */
  tlsHandshakes: number;
  resumedSessions: number;
  /** HTTP requests answered (WebSocket upgrades and dropped requests not included). */
  requests: number;
  /** Requests and upgrades by the Connection header they carried ("(none)" without one). */
  connectionHeaders: Record<string, number>;
  /** Requests and upgrades by their Upgrade header ("(none)" without one). */
  upgradeHeaders: Record<string, number>;
  /** WebSocket upgrades answered with 101. */
  upgrades: number;
  /** Requests dropped unanswered on purpose (dropOnReusedConnections). */
  dropped: number;
}

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC11B0A';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455). */
export function webSocketAccept(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

function newCounters(): OriginCounters {
  return { connections: 0, tlsHandshakes: 0, resumedSessions: 0, requests: 0, connectionHeaders: {}, upgradeHeaders: {}, upgrades: 0, dropped: 0 };
}

/**
 * A stand-in for the product's origin, over HTTPS: answers every request with a small JSON
 * page that shows what the edge forwarded (Host, X-Forwarded-For/-Proto/-Host) and which
 * address answered. It counts connections, resumed TLS sessions, requests and the
 * Connection/Upgrade headers it saw; answers a WebSocket upgrade with 101 and then echoes
 * whatever arrives; and can drop requests that arrive on a reused connection, as an origin
 * that closed an idle connection just as the edge sent on it.
 */
export class OriginServer {
  counters = newCounters();
  /** The next this-many requests arriving on a connection that already served one are dropped unanswered. */
  dropOnReusedConnections = 0;
  private server?: https.Server;
  private readonly served = new WeakMap<Socket, number>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: OriginServerOptions) {}

  get address(): string {
    return this.options.address ?? '127.0.0.1';
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  resetCounters(): void {
    this.counters = newCounters();
  }

  async start(port = 0): Promise<number> {
    this.server = https.createServer({
      cert: readFileSync(this.options.tls.cert),
      key: readFileSync(this.options.tls.key),
    }, (req, res) => this.handle(req, res));
    // Longer than the edge keeps idle connections (30 s), as the load balancers in front of
    // real origins (60 s): the edge, not the origin, closes idle ones.
    this.server.keepAliveTimeout = 65000;
    this.server.on('connection', (socket: Socket) => {
      this.counters.connections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.counters.tlsHandshakes++;
      if (socket.isSessionReused()) this.counters.resumedSessions++;
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, this.address, () => { this.server!.off('error', reject); resolve(); });
    });
    return this.port;
  }

  private countHeaders(req: http.IncomingMessage): void {
    const connection = req.headers.connection ?? '(none)';
    const upgrade = req.headers.upgrade ?? '(none)';
    this.counters.connectionHeaders[connection] = (this.counters.connectionHeaders[connection] ?? 0) + 1;
    this.counters.upgradeHeaders[upgrade] = (this.counters.upgradeHeaders[upgrade] ?? 0) + 1;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    const servedBefore = this.served.get(socket) ?? 0;
    this.served.set(socket, servedBefore + 1);
    if (servedBefore > 0 && this.dropOnReusedConnections > 0) {
      this.dropOnReusedConnections--;
      this.counters.dropped++;
      socket.destroy();
      return;
    }
    this.countHeaders(req);
    this.counters.requests++;
    const body = JSON.stringify({
      page: 'origin',
      host: req.headers.host,
      forwardedFor: req.headers['x-forwarded-for'],
      forwardedProto: req.headers['x-forwarded-proto'],
      forwardedHost: req.headers['x-forwarded-host'],
      path: req.url,
      method: req.method,
      address: socket.localAddress,
    });
    // Read the request body (a POST), then answer.
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${body}\n`));
  }

  /** A minimal WebSocket upgrade: 101 with the right Sec-WebSocket-Accept, then an echo of every byte. */
  private upgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    this.countHeaders(req);
    const key = req.headers['sec-websocket-key'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.counters.upgrades++;
    socket.write([
      'HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${webSocketAccept(key)}`, '', '',
    ].join('\r\n'));
    if (head.length > 0) socket.write(head);
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    // Upgraded sockets are no longer the HTTP server's: destroy every socket it accepted.
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  /** Closes every open connection (idle or not) while it keeps listening. */
  closeConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
