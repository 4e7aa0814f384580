// The plain nginx servers of the bench: the references (a static certificate; an upstream
// keep-alive proxy) and the origin. Same binary as the edge, no Lua.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nginxBinary, runningAsRoot, WORKER_USER } from '../bin/local-edge/nginx-instance';
import { isAlive, ManagedProcess, portAcceptsConnections, startProcess, waitFor } from '../bin/local-edge/processes';
import { onlyWorker, pinNginx } from './measure';

/** One `worker_processes 1` nginx with the http{} body it is given, pinned to a CPU list. */
export class PlainNginx {
  readonly confFile: string;
  private process?: ManagedProcess;

  constructor(readonly name: string, readonly dir: string, private readonly http: string[], private readonly readyPort: number) {
    this.confFile = path.join(dir, 'nginx.conf');
  }

  async start(cpus: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.confFile, [
      `# ${this.name}: written by bench/plain-nginx.ts`,
      ...(runningAsRoot() ? [`user ${WORKER_USER};`] : []),
      'worker_processes 1;',
      `pid ${this.dir}/nginx.pid;`,
      `error_log ${this.dir}/error.log info;`,
      'events {',
      '  worker_connections 4096;',
      '}',
      'http {',
      '  server_tokens off;',
      '  default_type application/octet-stream;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${this.dir}/${t};`),
      ...this.http.map((l) => `  ${l}`),
      '}',
      '',
    ].join('\n'));
    this.process = startProcess(this.name, nginxBinary(),
      ['-c', this.confFile, '-e', path.join(this.dir, 'startup.log'), '-g', 'daemon off;'],
      { logFile: path.join(this.dir, 'stdout.log') });
    await waitFor(`${this.name} on port ${this.readyPort}`, async () => {
      if (!isAlive(this.process!.pid)) throw new Error(`${this.name} exited: see ${path.join(this.dir, 'startup.log')}`);
      return portAcceptsConnections(this.readyPort);
    });
    pinNginx(this.process.pid, cpus);
  }

  get pid(): number {
    if (!this.process) throw new Error(`${this.name} is not running`);
    return this.process.pid;
  }

  get workerPid(): number {
    return onlyWorker(this.pid);
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }
}

/** What a plain server needs from the edge's rendered HTTPS server, to be its like-for-like reference. */
export interface EdgeTlsServer {
  /** The HTTPS `listen` flags after the address, e.g. ["ssl", "http2", "default_server", "proxy_protocol"]. */
  readonly listenFlags: string[];
  /** Its TLS settings (ssl_* lines other than the certificate ones), as rendered. */
  readonly tlsLines: string[];
  /** What goes with its listener: the client address from PROXY protocol (set_real_ip_from, real_ip_header). */
  readonly listenerLines: string[];
  /** The `log_format` the edge logs requests with (one directive over several lines). */
  readonly logFormat: string[];
}

/**
 * Reads the HTTPS server's listener flags and TLS settings out of the edge's rendered nginx.conf
 * (the server with `ssl_certificate_by_lua_block`), so the reference follows the renderer.
 */
export function edgeTlsServer(conf: string): EdgeTlsServer {
  const lines = conf.split('\n');
  const lua = lines.findIndex((l) => l.includes('ssl_certificate_by_lua_block'));
  let start = lua;
  while (start >= 0 && !/^\s*server\s*\{\s*$/.test(lines[start])) start--;
  if (lua < 0 || start < 0) throw new Error('no HTTPS server with ssl_certificate_by_lua_block in the rendered nginx.conf');
  const indent = /^(\s*)/.exec(lines[start])![1];
  let end = start + 1;
  while (end < lines.length && lines[end] !== `${indent}}`) end++;
  const block = lines.slice(start + 1, end).map((l) => l.trim());
  const listen = block.find((l) => /^listen\s/.test(l) && /\sssl[\s;]/.test(l));
  if (!listen) throw new Error('no ssl listener in the HTTPS server of the rendered nginx.conf');
  const listenFlags = listen.replace(/;$/, '').split(/\s+/).slice(2);
  const tlsLines = block.filter((l) => (/^ssl_/.test(l) || /^http2\s/.test(l)) && !/^ssl_certificate(_key|_by_lua_block)?\s/.test(l));

  const listenerLines = block.filter((l) => /^(set_real_ip_from|real_ip_header)\s/.test(l));

  const logStart = lines.findIndex((l) => /^\s*log_format\s/.test(l));
  let logEnd = logStart;
  while (logEnd >= 0 && logEnd < lines.length && !/';\s*$/.test(lines[logEnd])) logEnd++;
  const logFormat = logStart >= 0 ? lines.slice(logStart, logEnd + 1).map((l) => l.trim()) : [];
  return { listenFlags, tlsLines, listenerLines, logFormat };
}
