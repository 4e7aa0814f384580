import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * A stand-in for the product's origin: answers every request with a small page that shows
 * what the edge forwarded (Host, X-Forwarded-For/-Proto/-Host), as JSON.
 */
export class OriginServer {
  private server?: http.Server;

  async start(port = 0): Promise<number> {
    this.server = http.createServer((req, res) => {
      const body = JSON.stringify({
        page: 'origin',
        host: req.headers.host,
        forwardedFor: req.headers['x-forwarded-for'],
        forwardedProto: req.headers['x-forwarded-proto'],
        forwardedHost: req.headers['x-forwarded-host'],
        path: req.url,
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${body}\n`);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
