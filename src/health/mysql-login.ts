import { createHash } from 'node:crypto';
import type { LoginConfig } from '../config/health.js';
import type { Answer, Dialogue } from './dialogue.js';
import { WireReader } from './wire-reader.js';

/*
 * kind = "mysql" with `user`: log in and quit with COM_QUIT, as HAProxy's
 * `option mysql-check user` does, so MySQL and MariaDB see a client that
 * logged in and out: no "Aborted connection" warning, no Aborted_connects,
 * nothing towards max_connect_errors. Packets as documented in MySQL's
 * "Connection Phase Packets" (Protocol::HandshakeV10, HandshakeResponse41,
 * AuthSwitchRequest) and MariaDB's "Connecting" page.
 */

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const NATIVE = 'mysql_native_password';
const SHA2 = 'caching_sha2_password';
/** utf8_general_ci: every server since 4.1 knows it. */
const CHARSET = 33;
const MAX_PACKET = 0x0100_0000;
/** COM_QUIT: length 1, sequence 0, command 0x01. */
const COM_QUIT = Buffer.from([1, 0, 0, 0, 1]);

const sha1 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i % b.length] as number);
  return out;
}

/** The auth response of `plugin` for `password` and the server's 20-byte salt; null: a plugin we do not speak. */
export function scramble(plugin: string, password: string, salt: Buffer): Buffer | null {
  if (plugin !== NATIVE && plugin !== SHA2) return null;
  if (password === '') return Buffer.alloc(0);
  const pw = Buffer.from(password, 'utf8');
  if (plugin === NATIVE) {
    const h1 = sha1(pw);
    return xor(h1, sha1(salt, sha1(h1)));
  }
  const h1 = sha256(pw);
  return xor(h1, sha256(sha256(sha256(h1)), salt));
}

function packet(seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = seq & 0xff;
  return Buffer.concat([head, payload]);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

/** An ERR packet's text: "error 1045 Access denied for user …" (payload after its 0xff). */
function errText(r: WireReader): string {
  const code = r.u16le('error code');
  let msg = r.rest();
  // 4.1+: "#" and a 5-character SQL state before the message.
  if (msg[0] === 0x23 && msg.length >= 6) msg = msg.subarray(6);
  return `error ${code} ${msg.toString('utf8').slice(0, 160)}`;
}

export class MysqlLogin implements Dialogue {
  private state: 'greeting' | 'login' = 'greeting';

  constructor(private readonly cfg: LoginConfig) {}

  opening(): null {
    return null;
  }

  frame(buf: Buffer): number | string {
    if (buf.length < 4) return 0;
    const len = buf.readUIntLE(0, 3);
    if (len > 0xffff) return `mysql: not a MySQL packet (length ${len})`;
    return 4 + len;
  }

  waitingFor(): string {
    return this.state === 'greeting'
      ? 'the server greeting'
      : `the login reply for "${this.cfg.user}"`;
  }

  message(msg: Buffer): Answer {
    const seq = msg[3] as number;
    const r = new WireReader(msg, 4);
    const first = r.u8('packet type');
    if (first === 0xff) {
      const what = this.state === 'greeting' ? '' : ` login as "${this.cfg.user}":`;
      return { verdict: `mysql:${what} ${errText(r)}` };
    }
    return this.state === 'greeting' ? this.greeting(first, r, seq) : this.reply(first, r, seq);
  }

  private greeting(first: number, r: WireReader, seq: number): Answer {
    if (first !== 0x0a)
      return { verdict: `mysql: not a protocol-10 handshake (first byte 0x${first.toString(16)})` };
    r.cstring('server version');
    r.u32le('connection id');
    const salt1 = r.bytes(8, 'auth-plugin-data-part-1');
    r.u8('filler');
    let caps = r.u16le('capability flags');
    let salt2: Buffer = Buffer.alloc(0);
    let plugin = NATIVE;
    if (r.left > 0) {
      r.u8('character set');
      r.u16le('status flags');
      caps |= r.u16le('capability flags (upper)') << 16;
      const dataLen = r.u8('auth-plugin-data length');
      r.bytes(10, 'reserved');
      if (caps & CLIENT_SECURE_CONNECTION)
        salt2 = r.bytes(Math.min(r.left, Math.max(13, dataLen - 8)), 'auth-plugin-data-part-2');
      if (caps & CLIENT_PLUGIN_AUTH && r.left > 0) plugin = r.cstring('auth plugin name', true);
    }
    if (!(caps & CLIENT_PROTOCOL_41) || !(caps & CLIENT_SECURE_CONNECTION))
      return { verdict: 'mysql: the server predates protocol 4.1 logins' };
    // The salt is 20 bytes; part 2 ends with a NUL.
    const salt = Buffer.concat([salt1, salt2]).subarray(0, 20);
    const use = plugin === SHA2 ? SHA2 : NATIVE;
    const auth = scramble(use, this.cfg.password ?? '', salt) as Buffer;
    const db = this.cfg.database;
    const flags =
      CLIENT_LONG_PASSWORD |
      CLIENT_PROTOCOL_41 |
      CLIENT_SECURE_CONNECTION |
      (caps & CLIENT_PLUGIN_AUTH) |
      (db !== null ? CLIENT_CONNECT_WITH_DB : 0);
    const head = Buffer.alloc(32);
    head.writeUInt32LE(flags >>> 0, 0);
    head.writeUInt32LE(MAX_PACKET, 4);
    head[8] = CHARSET;
    const parts = [head, cstr(this.cfg.user), Buffer.from([auth.length]), auth];
    if (db !== null) parts.push(cstr(db));
    if (caps & CLIENT_PLUGIN_AUTH) parts.push(cstr(use));
    this.state = 'login';
    return { send: packet(seq + 1, Buffer.concat(parts)) };
  }

  private reply(first: number, r: WireReader, seq: number): Answer {
    if (first === 0x00) return { send: COM_QUIT, verdict: true };
    if (first === 0xfe) {
      // AuthSwitchRequest: another plugin, with a fresh salt.
      const plugin = r.cstring('plugin name', true);
      const data = r.rest();
      const salt = data[data.length - 1] === 0 ? data.subarray(0, -1) : data;
      const auth = scramble(plugin, this.cfg.password ?? '', salt);
      if (auth === null)
        return {
          verdict: `mysql: the server wants auth plugin "${plugin}" for "${this.cfg.user}"; the probe speaks ${NATIVE} and ${SHA2} (fast path)`,
        };
      return { send: packet(seq + 1, auth) };
    }
    if (first === 0x01) {
      // caching_sha2_password's AuthMoreData: 3 = the cached fast path passed (an OK follows), 4 = full authentication.
      const status = r.u8('auth status');
      if (status === 3) return {};
      return {
        verdict: `mysql: ${SHA2} wants a full authentication for "${this.cfg.user}" (TLS or RSA), which the probe does not do: log in once with a real client to fill the server's cache, or give the probe user ${NATIVE}`,
      };
    }
    return { verdict: `mysql: unexpected login reply 0x${first.toString(16)}` };
  }
}
