import * as http from 'node:http';

export interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly ms: number;
}

/** A plain HTTP/1.1 GET to 127.0.0.1:<port> (asynchronous: servers run in this process too). */
export function httpGet(port: number, path: string, options: { host?: string; timeoutMs?: number } = {}): Promise<HttpResult> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1', port, path, agent: false,
      headers: { Connection: 'close', ...(options.host ? { Host: options.host } : {}) },
      timeout: options.timeoutMs ?? 30000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, body, ms: Number(process.hrtime.bigint() - started) / 1e6,
      }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

/** GET that expects 200 and a JSON body. */
export async function getJson<T = any>(port: number, path: string): Promise<T & { clientMs: number }> {
  const res = await httpGet(port, path);
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  return { ...JSON.parse(res.body), clientMs: res.ms };
}

/** Parses Prometheus text into "name{labels}" -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) values.set(m[1], Number(m[2]));
  }
  return values;
}
