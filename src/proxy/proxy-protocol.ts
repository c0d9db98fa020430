import { isIPv4, isIPv6, type Socket } from 'node:net';
import { canonicalIp, clientKey } from './ip-text.js';

/**
 * The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy specifies
 * it (doc/proxy-protocol.txt): a header a proxy sends before the client's
 * bytes, naming the client's address.
 */

export interface ProxyAddresses {
  family: 'TCP4' | 'TCP6';
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
}

/** A parsed header; `addresses` is null for v1 UNKNOWN and v2 LOCAL (health checks): keep the socket's own. */
export interface ProxyHeader {
  version: 1 | 2;
  addresses: ProxyAddresses | null;
}

export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ');

/** `PROXY TCP4 src dst sport dport\r\n`; `PROXY UNKNOWN\r\n` when an address is not IP. */
export function encodeV1(a: ProxyAddresses | null): Buffer {
  if (!a) return Buffer.from('PROXY UNKNOWN\r\n');
  return Buffer.from(
    `PROXY ${a.family} ${a.srcAddr} ${a.dstAddr} ${a.srcPort} ${a.dstPort}\r\n`,
    'latin1',
  );
}

export function encodeV2(a: ProxyAddresses | null): Buffer {
  if (!a) {
    // LOCAL command, no addresses.
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const v6 = a.family === 'TCP6';
  const len = v6 ? 36 : 12;
  const out = Buffer.alloc(16 + len);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = v6 ? 0x21 : 0x11; // AF_INET6 or AF_INET, STREAM
  out.writeUInt16BE(len, 14);
  if (v6) {
    ipv6Bytes(a.srcAddr).copy(out, 16);
    ipv6Bytes(a.dstAddr).copy(out, 32);
    out.writeUInt16BE(a.srcPort, 48);
    out.writeUInt16BE(a.dstPort, 50);
  } else {
    ipv4Bytes(a.srcAddr).copy(out, 16);
    ipv4Bytes(a.dstAddr).copy(out, 20);
    out.writeUInt16BE(a.srcPort, 24);
    out.writeUInt16BE(a.dstPort, 26);
  }
  return out;
}

/** The addresses of an accepted socket as a header would carry them, or null when not plain IP. */
export function addressesOf(
  srcAddr: string | undefined,
  srcPort: number | undefined,
  dstAddr: string | undefined,
  dstPort: number | undefined,
): ProxyAddresses | null {
  if (!srcAddr || !dstAddr || srcPort === undefined || dstPort === undefined) return null;
  // A link-local peer's address comes with its zone ("fe80::1%eth0"), which no header may carry.
  const s = clientKey(withoutZone(srcAddr));
  const d = clientKey(withoutZone(dstAddr));
  if (isIPv4(s) && isIPv4(d)) return { family: 'TCP4', srcAddr: s, srcPort, dstAddr: d, dstPort };
  if (isIPv6(s) && isIPv6(d)) return { family: 'TCP6', srcAddr: s, srcPort, dstAddr: d, dstPort };
  return null;
}

function withoutZone(a: string): string {
  const i = a.indexOf('%');
  return i < 0 ? a : a.slice(0, i);
}

function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function ipv6Bytes(a: string): Buffer {
  const out = Buffer.alloc(16);
  let text = a;
  let tail: number[] = [];
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (m) {
    const b = ipv4Bytes(m[2] as string);
    tail = [((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number)];
    const head = m[1] as string;
    text = head.endsWith('::') ? head : head.slice(0, -1);
  }
  const hex = (x: string): number[] =>
    x === '' ? [] : x.split(':').map((h) => Number.parseInt(h, 16));
  const dbl = text.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = hex(text.slice(0, dbl));
    const rest = hex(text.slice(dbl + 2));
    groups = [
      ...head,
      ...new Array<number>(8 - head.length - rest.length - tail.length).fill(0),
      ...rest,
      ...tail,
    ];
  } else {
    groups = [...hex(text), ...tail];
  }
  groups.forEach((g, k) => {
    out.writeUInt16BE(g, k * 2);
  });
  return out;
}

/** Sixteen address bytes as RFC 5952 text: the same key a socket's own address would give. */
function ipv6Text(b: Buffer): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i).toString(16));
  return canonicalIp(g.join(':'), 6) as string;
}

export type ParseResult =
  | { state: 'more' }
  | { state: 'done'; header: ProxyHeader; consumed: number }
  | { state: 'error'; reason: string };

const NEED_MORE: ParseResult = { state: 'more' };

/** Parses a header at the start of `buf` (everything the client sent so far). */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return { state: 'error', reason: 'not a PROXY protocol header' };
}

function parseV1(buf: Buffer): ParseResult {
  const n = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, n, 0, n) !== 0)
    return { state: 'error', reason: 'not a PROXY protocol header' };
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0)
    return buf.length >= V1_MAX
      ? { state: 'error', reason: 'v1 header longer than 107 bytes' }
      : NEED_MORE;
  if (end + 2 > V1_MAX) return { state: 'error', reason: 'v1 header longer than 107 bytes' };
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN')
    return { state: 'done', header: { version: 1, addresses: null }, consumed: end + 2 };
  if (parts.length !== 6) return { state: 'error', reason: 'v1 header: wrong number of fields' };
  const [, family, src, dst, sport, dport] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (family !== 'TCP4' && family !== 'TCP6') {
    return { state: 'error', reason: `v1 header: unknown family ${JSON.stringify(family)}` };
  }
  // Canonical text (RFC 5952), and nothing the encoder could choke on later (zone ids).
  const fam = family === 'TCP4' ? 4 : 6;
  const srcAddr = canonicalIp(src, fam);
  const dstAddr = canonicalIp(dst, fam);
  if (srcAddr === null || dstAddr === null)
    return { state: 'error', reason: 'v1 header: bad address' };
  const sp = port(sport);
  const dp = port(dport);
  if (sp < 0 || dp < 0) return { state: 'error', reason: 'v1 header: bad port' };
  return {
    state: 'done',
    header: {
      version: 1,
      addresses: { family, srcAddr, srcPort: sp, dstAddr, dstPort: dp },
    },
    consumed: end + 2,
  };
}

function port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

function parseV2(buf: Buffer): ParseResult {
  const n = Math.min(buf.length, 12);
  if (buf.compare(V2_SIGNATURE, 0, n, 0, n) !== 0)
    return { state: 'error', reason: 'not a PROXY protocol header' };
  if (buf.length < 16) return NEED_MORE;
  const verCmd = buf[12] as number;
  if (verCmd >> 4 !== 2) return { state: 'error', reason: 'v2 header: unsupported version' };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { state: 'error', reason: 'v2 header: unknown command' };
  const fam = buf[13] as number;
  const len = buf.readUInt16BE(14);
  if (len > 1024) return { state: 'error', reason: 'v2 header: address block too long' };
  if (buf.length < 16 + len) return NEED_MORE;
  const consumed = 16 + len;
  if (cmd === 0) return { state: 'done', header: { version: 2, addresses: null }, consumed };
  if (fam === 0x11) {
    if (len < 12) return { state: 'error', reason: 'v2 header: short IPv4 block' };
    const src = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    const dst = `${buf[20]}.${buf[21]}.${buf[22]}.${buf[23]}`;
    return {
      state: 'done',
      header: {
        version: 2,
        addresses: {
          family: 'TCP4',
          srcAddr: src,
          srcPort: buf.readUInt16BE(24),
          dstAddr: dst,
          dstPort: buf.readUInt16BE(26),
        },
      },
      consumed,
    };
  }
  if (fam === 0x21) {
    if (len < 36) return { state: 'error', reason: 'v2 header: short IPv6 block' };
    return {
      state: 'done',
      header: {
        version: 2,
        addresses: {
          family: 'TCP6',
          srcAddr: ipv6Text(buf.subarray(16, 32)),
          srcPort: buf.readUInt16BE(48),
          dstAddr: ipv6Text(buf.subarray(32, 48)),
          dstPort: buf.readUInt16BE(50),
        },
      },
      consumed,
    };
  }
  // UNSPEC or a family we do not carry (unix sockets): accept, keep the socket's own address.
  if ((fam & 0xf0) === 0 || (fam & 0xf0) === 0x30)
    return { state: 'done', header: { version: 2, addresses: null }, consumed };
  return { state: 'error', reason: 'v2 header: unknown address family' };
}

/**
 * The header to send for a client: the addresses its own PROXY header gave
 * (`proxied`), else its socket's.
 */
export function headerFor(
  client: Socket,
  proxied: ProxyAddresses | null,
  version: 'v1' | 'v2',
): Buffer {
  const a =
    proxied ??
    addressesOf(client.remoteAddress, client.remotePort, client.localAddress, client.localPort);
  return version === 'v2' ? encodeV2(a) : encodeV1(a);
}
