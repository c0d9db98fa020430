import { createHash } from 'node:crypto';
import type { LoginConfig } from '../config/health.js';
import type { Answer, Dialogue } from './dialogue.js';
import { Scram } from './scram.js';
import { WireReader } from './wire-reader.js';

/*
 * kind = "postgres" with `user`: a startup message (user, database), the
 * authentication the server asks for (trust; with a password: cleartext,
 * md5 or SCRAM-SHA-256), ReadyForQuery, then Terminate: PostgreSQL sees a
 * session that started and ended cleanly. Message formats as in the
 * PostgreSQL manual, "Frontend/Backend Protocol: Message Formats" and
 * "SASL Authentication".
 */

const PROTOCOL_3 = 196_608;
/** Terminate: 'X', length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
/** Message types a server sends during startup; anything else is not PostgreSQL speaking. */
const STARTUP_TYPES = new Set(['R', 'E', 'S', 'K', 'N', 'Z', 'v']);
const MAX_MESSAGE = 64 * 1024;

const AUTH_NAMES: Record<number, string> = {
  2: 'Kerberos V5',
  7: 'GSSAPI',
  9: 'SSPI',
};

/** A typed message: type byte, int32 length (itself included), body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const md5hex = (...parts: (string | Buffer)[]): string => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** An ErrorResponse's fields: "FATAL 28P01 password authentication failed for user …". */
function errorText(r: WireReader): string {
  const f = new Map<number, string>();
  while (r.left > 0) {
    const code = r.u8('field type');
    if (code === 0) break;
    f.set(code, r.cstring('field value', true));
  }
  const s = (c: string): string => f.get(c.charCodeAt(0)) ?? '';
  return [s('S'), s('C'), s('M')]
    .filter((x) => x !== '')
    .join(' ')
    .slice(0, 200);
}

export class PostgresLogin implements Dialogue {
  private state: 'auth' | 'ready' = 'auth';
  private scram: Scram | null = null;

  constructor(
    private readonly cfg: LoginConfig,
    /** Salted SCRAM passwords, kept across this probe's logins. */
    private readonly salted: Map<string, Buffer>,
  ) {}

  opening(): Buffer {
    const params = [
      cstr('user'),
      cstr(this.cfg.user),
      cstr('database'),
      cstr(this.cfg.database ?? this.cfg.user),
      cstr('application_name'),
      cstr('blitz-lb health'),
      Buffer.from([0]),
    ];
    const body = Buffer.concat(params);
    const head = Buffer.alloc(8);
    head.writeInt32BE(body.length + 8, 0);
    head.writeInt32BE(PROTOCOL_3, 4);
    return Buffer.concat([head, body]);
  }

  frame(buf: Buffer): number | string {
    if (buf.length < 1) return 0;
    const type = String.fromCharCode(buf[0] as number);
    if (!STARTUP_TYPES.has(type))
      return `postgres: not a PostgreSQL reply (message type 0x${(buf[0] as number).toString(16)})`;
    if (buf.length < 5) return 0;
    const len = buf.readInt32BE(1);
    if (len < 4 || len > MAX_MESSAGE) return `postgres: bad message length ${len}`;
    return 1 + len;
  }

  waitingFor(): string {
    return this.state === 'auth' ? `the login of "${this.cfg.user}"` : 'ReadyForQuery';
  }

  message(msg: Buffer): Answer {
    const type = String.fromCharCode(msg[0] as number);
    const r = new WireReader(msg, 5);
    if (type === 'E') return { verdict: `postgres: ${errorText(r)}` };
    if (type === 'Z') return { send: TERMINATE, verdict: true };
    if (type === 'R') return this.auth(r);
    // ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion: nothing to say.
    return {};
  }

  private needPassword(method: string): Answer | null {
    if (this.cfg.password !== null) return null;
    return {
      verdict: `postgres: the server asks "${this.cfg.user}" for a password (${method}); set health.password`,
    };
  }

  private auth(r: WireReader): Answer {
    const code = r.i32be('authentication type');
    const pw = this.cfg.password ?? '';
    switch (code) {
      case 0:
        this.state = 'ready';
        return {};
      case 3:
        return this.needPassword('cleartext') ?? { send: message('p', cstr(pw)) };
      case 5: {
        const salt = r.bytes(4, 'md5 salt');
        return (
          this.needPassword('md5') ?? {
            send: message('p', cstr(`md5${md5hex(md5hex(pw, this.cfg.user), salt)}`)),
          }
        );
      }
      case 10: {
        const mechanisms: string[] = [];
        while (r.left > 1) mechanisms.push(r.cstring('SASL mechanism'));
        if (!mechanisms.includes('SCRAM-SHA-256'))
          return {
            verdict: `postgres: no SASL mechanism the probe speaks (${mechanisms.join(', ')})`,
          };
        const missing = this.needPassword('SCRAM-SHA-256');
        if (missing) return missing;
        this.scram = new Scram(pw, this.salted);
        const first = Buffer.from(this.scram.first(), 'utf8');
        const len = Buffer.alloc(4);
        len.writeInt32BE(first.length, 0);
        return { send: message('p', Buffer.concat([cstr('SCRAM-SHA-256'), len, first])) };
      }
      case 11: {
        if (!this.scram) return { verdict: 'postgres: SASLContinue before SASL' };
        const final = this.scram.final(r.rest().toString('utf8'));
        if (final.startsWith('!')) return { verdict: `postgres: SCRAM: ${final.slice(1)}` };
        return { send: message('p', Buffer.from(final, 'utf8')) };
      }
      case 12:
        if (!this.scram?.verify(r.rest().toString('utf8')))
          return { verdict: 'postgres: SCRAM: the server signature does not match' };
        return {};
      default:
        return {
          verdict: `postgres: authentication method ${AUTH_NAMES[code] ?? code} is not one the probe speaks (trust, password, md5, scram-sha-256)`,
        };
    }
  }
}
