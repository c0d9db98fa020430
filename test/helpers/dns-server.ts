import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { isIPv6 } from 'node:net';
import type { TestContext } from 'node:test';

/** A record the server answers with. */
export type DnsRecord =
  | { type: 'A'; address: string; ttl: number }
  | { type: 'AAAA'; address: string; ttl: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl: number };

const TYPES = { A: 1, AAAA: 28, SRV: 33 } as const;
const TYPE_NAMES: Record<number, string> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

export interface Query {
  name: string;
  type: string;
  at: number;
}

/**
 * A small authoritative DNS server on 127.0.0.1 (UDP, port 0), for tests that
 * resolve through node:dns against a real server. `zone` maps a name to its
 * records: a name that is absent answers NXDOMAIN, a name without a record of
 * the asked type answers NOERROR with no answer. `delayMs` holds every answer
 * back; `drop` answers nothing at all.
 */
export class DnsServer extends EventEmitter<{ query: [Query] }> {
  readonly zone = new Map<string, DnsRecord[]>();
  readonly queries: Query[] = [];
  delayMs = 0;
  drop = false;
  port = 0;
  private readonly sock: Socket = createSocket('udp4');

  async start(t: TestContext): Promise<this> {
    this.sock.on('message', (msg, from) => this.onMessage(msg, from));
    this.sock.on('error', () => {});
    this.sock.bind(0, '127.0.0.1');
    await once(this.sock, 'listening');
    this.port = this.sock.address().port;
    t.after(() => this.sock.close());
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(name: string, records: DnsRecord[]): void {
    this.zone.set(name.toLowerCase(), records);
  }

  /** Resolves at the next query for `name` (any type) arriving after this call. */
  nextQuery(name: string): Promise<Query> {
    return new Promise((resolve) => {
      const on = (q: Query): void => {
        if (q.name !== name) return;
        this.off('query', on);
        resolve(q);
      };
      this.on('query', on);
    });
  }

  private onMessage(msg: Buffer, from: RemoteInfo): void {
    if (msg.length < 12) return;
    let off = 12;
    const labels: string[] = [];
    while (off < msg.length && msg[off] !== 0) {
      const len = msg[off] as number;
      labels.push(msg.toString('ascii', off + 1, off + 1 + len));
      off += len + 1;
    }
    off += 1;
    const qtype = msg.readUInt16BE(off);
    const questionEnd = off + 4;
    const name = labels.join('.').toLowerCase();
    const q = { name, type: TYPE_NAMES[qtype] ?? String(qtype), at: Date.now() };
    this.queries.push(q);
    this.emit('query', q);
    if (this.drop) return;
    const reply = this.answer(msg, questionEnd, name, qtype);
    const send = (): void => this.sock.send(reply, from.port, from.address);
    if (this.delayMs > 0) setTimeout(send, this.delayMs).unref();
    else send();
  }

  private answer(query: Buffer, questionEnd: number, name: string, qtype: number): Buffer {
    const records = this.zone.get(name);
    const rcode = records ? 0 : 3;
    const matching = (records ?? []).filter((r) => TYPES[r.type] === qtype);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    // QR, AA, RD copied, RA.
    header.writeUInt16BE(0x8000 | 0x0400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(matching.length, 6);
    const parts = [header, query.subarray(12, questionEnd)];
    for (const r of matching) parts.push(encodeRecord(r));
    return Buffer.concat(parts);
  }
}

function encodeName(name: string): Buffer {
  const parts = name
    .split('.')
    .filter((l) => l !== '')
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return b;
}

function encodeRecord(r: DnsRecord): Buffer {
  let rdata: Buffer;
  if (r.type === 'A') rdata = Buffer.from(r.address.split('.').map(Number));
  else if (r.type === 'AAAA') {
    if (!isIPv6(r.address)) throw new Error(`not IPv6: ${r.address}`);
    rdata = ipv6Bytes(r.address);
  } else {
    const fixed = Buffer.alloc(6);
    fixed.writeUInt16BE(r.priority, 0);
    fixed.writeUInt16BE(r.weight, 2);
    fixed.writeUInt16BE(r.port, 4);
    rdata = Buffer.concat([fixed, encodeName(r.target)]);
  }
  const head = Buffer.alloc(12);
  // The owner name is the question's: a pointer to offset 12.
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(TYPES[r.type], 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt32BE(r.ttl, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

/** Starts a DnsServer for this test. */
export function dnsServer(t: TestContext): Promise<DnsServer> {
  return new DnsServer().start(t);
}
