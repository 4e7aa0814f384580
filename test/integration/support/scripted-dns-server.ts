import * as dgram from 'node:dgram';
import * as net from 'node:net';

/** One record of a scripted answer. */
export interface ScriptedRecord {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | 'CNAME';
  readonly ttl: number;
  /** An address, or the CNAME's target. */
  readonly data: string;
}

/** How the server answers questions about one name (any type). */
export interface ScriptedAnswer {
  /** The answer section, in this order. */
  readonly records: ScriptedRecord[];
  /** Names as compression pointers wherever a name (or its tail) was written before. @default false */
  readonly compress?: boolean;
  /** Over UDP: the TC bit and no records; the answer comes only over TCP. @default false */
  readonly truncateUdp?: boolean;
  /** Over UDP: first a datagram with another query ID, then (unless strayOnly) the answer. @default false */
  readonly strayFirst?: boolean;
  /** With strayFirst: only the stray datagram, never the answer. @default false */
  readonly strayOnly?: boolean;
  /** Never answers. @default false */
  readonly silent?: boolean;
}

const TYPES: Record<ScriptedRecord['type'], number> = { A: 1, CNAME: 5, AAAA: 28 };

/** A question the server received. */
export interface ReceivedQuery {
  readonly name: string;
  readonly type: number;
  readonly transport: 'udp' | 'tcp';
}

/**
 * A DNS server on 127.0.0.1 (UDP and TCP, one port) that answers from a script: what
 * pebble-challtestsrv cannot do (TTLs, compressed names, CNAME-only answers, truncation,
 * stray datagrams, silence), to test our DNS client. Records only, no authority section;
 * names it has no script for get NXDOMAIN.
 */
export class ScriptedDnsServer {
  readonly answers = new Map<string, ScriptedAnswer>();
  readonly queries: ReceivedQuery[] = [];
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly tcpSockets = new Set<net.Socket>();

  async start(port: number): Promise<void> {
    this.udp = dgram.createSocket('udp4');
    this.udp.on('message', (msg, peer) => this.onUdp(msg, peer));
    await new Promise<void>((resolve) => this.udp!.bind(port, '127.0.0.1', resolve));
    this.tcp = net.createServer((socket) => this.onTcp(socket));
    await new Promise<void>((resolve) => this.tcp!.listen(port, '127.0.0.1', resolve));
  }

  get port(): number {
    return this.udp!.address().port;
  }

  async stop(): Promise<void> {
    for (const socket of this.tcpSockets) socket.destroy();
    await new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
  }

  queriesFor(name: string): ReceivedQuery[] {
    return this.queries.filter((q) => q.name === name);
  }

  private onUdp(msg: Buffer, peer: dgram.RemoteInfo): void {
    const question = parseQuestion(msg);
    if (!question) return;
    this.queries.push({ name: question.name, type: question.type, transport: 'udp' });
    const script = this.answers.get(question.name);
    if (script?.silent) return;
    const send = (reply: Buffer) => this.udp!.send(reply, peer.port, peer.address);
    if (script?.strayFirst) {
      const stray = buildReply(msg, question, script, false);
      stray.writeUInt16BE((msg.readUInt16BE(0) + 1) & 0xffff, 0);
      send(stray);
      if (script.strayOnly) return;
    }
    send(buildReply(msg, question, script, Boolean(script?.truncateUdp)));
  }

  private onTcp(socket: net.Socket): void {
    this.tcpSockets.add(socket);
    socket.on('close', () => this.tcpSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (data) => {
      buffered = Buffer.concat([buffered, data]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        const question = parseQuestion(msg);
        if (!question) continue;
        this.queries.push({ name: question.name, type: question.type, transport: 'tcp' });
        const script = this.answers.get(question.name);
        if (script?.silent) continue;
        const reply = buildReply(msg, question, script, false);
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([length, reply]));
      }
    });
  }
}

interface Question {
  readonly name: string;
  readonly type: number;
  /** The question section as sent (name, type, class). */
  readonly wire: Buffer;
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let pos = 12;
  while (pos < msg.length && msg[pos] !== 0) {
    const len = msg[pos];
    labels.push(msg.subarray(pos + 1, pos + 1 + len).toString('latin1').toLowerCase());
    pos += len + 1;
  }
  if (pos + 5 > msg.length) return undefined;
  return { name: labels.join('.'), type: msg.readUInt16BE(pos + 1), wire: msg.subarray(12, pos + 5) };
}

/** Writes a name, as pointers to what was written before when compressing. */
function writeName(name: string, out: number[], written: Map<string, number>, compress: boolean): void {
  const labels = name.split('.').filter(Boolean);
  for (let i = 0; i < labels.length; i++) {
    const tail = labels.slice(i).join('.');
    const at = written.get(tail);
    if (compress && at !== undefined) {
      out.push(0xc0 | (at >> 8), at & 0xff);
      return;
    }
    if (out.length < 0x3fff) written.set(tail, out.length);
    out.push(labels[i].length, ...Buffer.from(labels[i], 'latin1'));
  }
  out.push(0);
}

/** The RDATA of an address record. */
function addressBytes(record: ScriptedRecord): number[] {
  if (record.type === 'A') return record.data.split('.').map(Number);
  const [head, tail] = record.data.split('::');
  const groups = (text: string | undefined) => (text ? text.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The reply to a query: its ID and question, RD/RA, the scripted records (or NXDOMAIN). */
function buildReply(query: Buffer, question: Question, script: ScriptedAnswer | undefined, truncated: boolean): Buffer {
  const out: number[] = [];
  const id = query.readUInt16BE(0);
  const rcode = script ? 0 : 3;
  const records = script && !truncated ? script.records : [];
  out.push(id >> 8, id & 0xff, 0x81 | (truncated ? 0x02 : 0), 0x80 | rcode, 0, 1, records.length >> 8, records.length & 0xff, 0, 0, 0, 0);
  const written = new Map<string, number>();
  writeName(question.name, out, written, false);
  out.push(...question.wire.subarray(question.wire.length - 4));
  const compress = Boolean(script?.compress);
  for (const record of records) {
    writeName(record.name, out, written, compress);
    const type = TYPES[record.type];
    out.push(type >> 8, type & 0xff, 0, 1, (record.ttl >>> 24) & 0xff, (record.ttl >>> 16) & 0xff, (record.ttl >>> 8) & 0xff, record.ttl & 0xff);
    const lengthAt = out.length;
    out.push(0, 0);
    // A CNAME's target may point back into the message too.
    if (record.type === 'CNAME') writeName(record.data, out, written, compress);
    else out.push(...addressBytes(record));
    const rdlength = out.length - lengthAt - 2;
    out[lengthAt] = rdlength >> 8;
    out[lengthAt + 1] = rdlength & 0xff;
  }
  return Buffer.from(out);
}
