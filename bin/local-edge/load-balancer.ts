import * as net from 'node:net';
import { AddressInfo } from 'node:net';

/** A PROXY protocol v1 header, as the NLB (v2) states the client's address to nginx. */
export function proxyHeader(source: { address: string; port: number }, destination: { address: string; port: number }): string {
  return `PROXY TCP4 ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`;
}

/**
 * The NLB stand-in: a TCP listener that spreads connections over the instances (round robin)
 * and prepends a PROXY protocol header with the client's address, as the real NLB does.
 */
export class LoadBalancer {
  private server?: net.Server;
  private next = 0;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly targets: () => number[]) {}

  async start(port = 0): Promise<number> {
    this.server = net.createServer((client) => this.forward(client));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this.port;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  private forward(client: net.Socket): void {
    const ports = this.targets();
    const target = ports[this.next++ % ports.length];
    const upstream = net.connect({ port: target, host: '127.0.0.1' }, () => {
      upstream.write(proxyHeader(
        { address: client.remoteAddress?.replace(/^::ffff:/, '') ?? '127.0.0.1', port: client.remotePort ?? 0 },
        { address: '127.0.0.1', port: this.port },
      ));
      client.pipe(upstream).pipe(client);
    });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => { client.destroy(); upstream.destroy(); });
    }
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
