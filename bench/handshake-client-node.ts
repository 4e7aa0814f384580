// The handshake client in Node.js, used only when bench/handshake-client.c cannot be compiled
// (no gcc or libssl-dev). Same arguments and output; Node's TLS costs the client more CPU than
// the server spends, so handshakes/s are client-bound (µs of server CPU per handshake still hold).
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';

function args(): { host: string; port: number; sni: string; proxyV1: boolean; seconds: number; inFlight: number; probe: boolean; timeoutMs: number } {
  const a = process.argv.slice(2);
  const value = (name: string, fallback: string) => {
    const i = a.indexOf(name);
    return i >= 0 && i + 1 < a.length ? a[i + 1] : fallback;
  };
  return {
    host: value('--host', '127.0.0.1'), port: Number(value('--port', '0')), sni: value('--sni', ''),
    proxyV1: a.includes('--proxy-v1'), seconds: Number(value('--seconds', '3')), inFlight: Number(value('--in-flight', '8')),
    probe: a.includes('--probe'), timeoutMs: Number(value('--timeout-ms', '10000')),
  };
}

const o = args();

/** One full handshake on a fresh connection; resolves with the TLS socket's facts, or rejects. */
function handshake(): Promise<{ fingerprint256: string; protocol: string; cipher: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: o.host, port: o.port });
    const timer = setTimeout(() => { raw.destroy(); reject(new Error('timed out')); }, o.timeoutMs);
    raw.once('error', (e) => { clearTimeout(timer); reject(e); });
    raw.once('connect', () => {
      if (o.proxyV1) raw.write(`PROXY TCP4 198.51.100.20 ${o.host} ${raw.localPort} ${o.port}\r\n`);
      const secure = tls.connect({ socket: raw, servername: o.sni, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false });
      secure.once('error', (e) => { clearTimeout(timer); raw.destroy(); reject(e); });
      secure.once('secureConnect', () => {
        const peer = secure.getPeerX509Certificate() as X509Certificate | undefined;
        const facts = {
          fingerprint256: peer?.fingerprint256 ?? '', protocol: secure.getProtocol() ?? '',
          cipher: secure.getCipher().standardName, subject: peer?.subject.replace(/\n/g, '/') ?? '',
        };
        secure.once('close', () => { clearTimeout(timer); resolve(facts); });
        secure.end(); // close_notify; the server closes
      });
    });
  });
}

async function main(): Promise<void> {
  if (o.probe) {
    try {
      console.log(JSON.stringify({ ok: true, ...(await handshake()) }));
    } catch (error) {
      console.log(JSON.stringify({ ok: false, error: (error as Error).message }));
      process.exitCode = 1;
    }
    return;
  }
  const started = Date.now();
  const end = started + o.seconds * 1000;
  let handshakes = 0;
  let errors = 0;
  let firstError = '';
  const loop = async () => {
    while (Date.now() < end) {
      try {
        await handshake();
        handshakes++;
      } catch (error) {
        errors++;
        firstError ||= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, loop));
  console.log(JSON.stringify({ handshakes, errors, seconds: (Date.now() - started) / 1000, first_error: firstError }));
}

void main();
