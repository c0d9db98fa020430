import { normalizeName } from '../../sni-routes.js';
/**
 * Reads a TLS ClientHello from the bytes a client has sent so far, without
 * consuming them (the caller replays them to the backend unchanged). The
 * hello may span several TLS records and several TCP reads (post-quantum key
 * shares make hellos of several KiB), so `parseClientHello` is called again
 * with all the bytes so far after each read: it answers "more", a failure, or
 * the server name and ALPN list. Pure and total: no input makes it throw.
 */

/** The most a client may send before its hello is complete (records and their headers). */
export const MAX_HELLO_BYTES = 16 * 1024;

export type HelloResult =
  | { readonly state: 'more' }
  | { readonly state: 'error'; readonly reason: string }
  | {
      readonly state: 'done';
      /** The SNI host name, lower case, without a trailing dot; null when the client sent none. */
      readonly serverName: string | null;
      /** The ALPN protocols offered, in the client's order; null when it sent none. */
      readonly alpn: readonly string[] | null;
    };

const MORE: HelloResult = Object.freeze({ state: 'more' });
const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
/** RFC 8446 5.1: a record fragment is at most 2^14 bytes (plus 256 tolerated for old stacks). */
const MAX_FRAGMENT = 16384 + 256;

function fail(reason: string): HelloResult {
  return { state: 'error', reason };
}

/**
 * A host name as a hello may carry it (RFC 6066: ASCII, no trailing dot,
 * though some clients send one): letters, digits, '-', '_' and dots between
 * non-empty labels. Anything else is refused rather than routed on.
 */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

export { normalizeName } from '../../sni-routes.js';

export function parseClientHello(buf: Buffer): HelloResult {
  if (buf.length === 0) return MORE;
  // The first byte answers most non-TLS clients at once (HTTP's "G", SSH's "S", SSLv2's 0x80).
  if (buf[0] !== RECORD_HANDSHAKE) return fail('not a TLS handshake record');
  // Reassemble the handshake message from the fragments of consecutive handshake records.
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1;
  let pos = 0;
  while (need < 0 || have < need) {
    if (pos + 5 > buf.length) return buf.length > MAX_HELLO_BYTES ? tooLarge() : MORE;
    if (buf[pos] !== RECORD_HANDSHAKE) return fail('a non-handshake record inside the hello');
    if (buf[pos + 1] !== 3) return fail(`record version ${buf[pos + 1]}.${buf[pos + 2]}`);
    const len = buf.readUInt16BE(pos + 3);
    if (len === 0) return fail('an empty handshake record');
    if (len > MAX_FRAGMENT) return fail(`a record of ${len} bytes`);
    if (pos + 5 + len > MAX_HELLO_BYTES) return tooLarge();
    if (pos + 5 + len > buf.length) return MORE;
    fragments.push(buf.subarray(pos + 5, pos + 5 + len));
    have += len;
    pos += 5 + len;
    if (need < 0 && have >= 4) {
      const head = fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO)
        return fail(`handshake type ${head[0]}, not a ClientHello`);
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_HELLO_BYTES) return tooLarge();
    }
  }
  const msg = fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
  // Bytes after the hello in the last record would be a second handshake message: a client never sends one.
  if (have !== need) return fail('bytes after the ClientHello in its record');
  return parseBody(msg.subarray(4, need));
}

function tooLarge(): HelloResult {
  return fail(`a ClientHello over ${MAX_HELLO_BYTES} bytes`);
}

/** The ClientHello body (RFC 8446 4.1.2): version, random, session id, ciphers, compression, extensions. */
function parseBody(b: Buffer): HelloResult {
  let p = 2 + 32;
  if (p + 1 > b.length) return fail('a truncated ClientHello');
  p += 1 + (b[p] as number);
  if (p + 2 > b.length) return fail('a truncated ClientHello');
  const ciphers = b.readUInt16BE(p);
  if (ciphers < 2 || ciphers % 2 !== 0) return fail('a malformed cipher suite list');
  p += 2 + ciphers;
  if (p + 1 > b.length) return fail('a truncated ClientHello');
  const compressions = b[p] as number;
  if (compressions < 1) return fail('an empty compression list');
  p += 1 + compressions;
  if (p > b.length) return fail('a truncated ClientHello');
  // SSL 3.0-era hellos end here: no extensions, so no name.
  if (p === b.length) return { state: 'done', serverName: null, alpn: null };
  if (p + 2 > b.length) return fail('a truncated extension block');
  const end = p + 2 + b.readUInt16BE(p);
  if (end !== b.length) return fail('the extension block does not fill the ClientHello');
  p += 2;
  let serverName: string | null = null;
  let alpn: string[] | null = null;
  let sawName = false;
  while (p < end) {
    if (p + 4 > end) return fail('a truncated extension');
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const data = p + 4;
    p = data + len;
    if (p > end) return fail('an extension past the end of the ClientHello');
    if (type === EXT_SERVER_NAME) {
      if (sawName) return fail('two server_name extensions');
      sawName = true;
      const r = readServerName(b.subarray(data, p));
      if (typeof r !== 'object') return fail(r);
      serverName = r.name;
    } else if (type === EXT_ALPN) {
      if (alpn) return fail('two ALPN extensions');
      const r = readAlpn(b.subarray(data, p));
      if (typeof r === 'string') return fail(r);
      alpn = r;
    }
  }
  return { state: 'done', serverName, alpn };
}

/** RFC 6066 3: a list of (type, name); only host_name (0) exists, and at most one of it. */
function readServerName(d: Buffer): { name: string | null } | string {
  if (d.length === 0) return { name: null };
  if (d.length < 2 || d.readUInt16BE(0) !== d.length - 2) return 'a malformed server_name list';
  let p = 2;
  let name: string | null = null;
  while (p < d.length) {
    if (p + 3 > d.length) return 'a truncated server_name entry';
    const type = d[p] as number;
    const len = d.readUInt16BE(p + 1);
    if (p + 3 + len > d.length) return 'a server_name entry past its list';
    if (type === 0) {
      if (name !== null) return 'two host names in server_name';
      const n = normalizeName(d.toString('latin1', p + 3, p + 3 + len));
      if (!HOST_NAME.test(n)) return 'a server name that is not a host name';
      name = n;
    }
    p += 3 + len;
  }
  return { name };
}

/** RFC 7301 3.1: a non-empty list of non-empty protocol names. */
function readAlpn(d: Buffer): string[] | string {
  if (d.length < 2 || d.readUInt16BE(0) !== d.length - 2) return 'a malformed ALPN list';
  const out: string[] = [];
  let p = 2;
  while (p < d.length) {
    const len = d[p] as number;
    if (len === 0 || p + 1 + len > d.length) return 'a malformed ALPN entry';
    out.push(d.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  if (out.length === 0) return 'an empty ALPN list';
  return out;
}
