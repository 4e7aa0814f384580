import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/** How the stand-in domain-check endpoint behaves. */
export type DomainCheckMode = 'normal' | 'slow' | 'error';

/**
 * A stand-in for the product's domain-check endpoint: GET /check?domain=<name> answers 200 for
 * names on its allow list, 404 otherwise. It counts requests per name, and can be made slow
 * (answers after delayMs) or broken (500), to exercise the edge's timeouts and fail-closed path.
 */
export class DomainCheckServer {
  readonly allowed = new Set<string>();
  readonly requests = new Map<string, number>();
  mode: DomainCheckMode = 'normal';
  delayMs = 5000;
  private server?: http.Server;
  private readonly pending = new Set<NodeJS.Timeout>();

  async start(port = 0): Promise<number> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 60000;
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/check`;
  }

  requestsFor(domain: string): number {
    return this.requests.get(domain) ?? 0;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/check') {
      res.writeHead(404).end();
      return;
    }
    const domain = url.searchParams.get('domain') ?? '';
    this.requests.set(domain, this.requestsFor(domain) + 1);
    const answer = () => {
      if (this.mode === 'error') res.writeHead(500).end('broken on purpose\n');
      else if (this.allowed.has(domain)) res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ours\n');
      else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not ours\n');
    };
    if (this.mode === 'slow') {
      const timer = setTimeout(() => { this.pending.delete(timer); answer(); }, this.delayMs);
      this.pending.add(timer);
    } else {
      answer();
    }
  }

  async stop(): Promise<void> {
    for (const timer of this.pending) clearTimeout(timer);
    this.pending.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
