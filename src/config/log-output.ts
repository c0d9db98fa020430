import { parseHostPort } from './address.js';
import { describe } from './duration.js';
import { durationOf, filePath, oneOfSpec, type Problems, type Table } from './fields.js';
import { checkPlace } from './guarded-file.js';
import { MAX_TIMER_MS } from './limits.js';
import type { Fields } from './spec.js';

/**
 * [log] beyond level and access: where lines go (stdout, stderr, a file
 * reopened on SIGUSR1, syslog in RFC 5424), how levels are written, the
 * host name every line carries, and interim access lines for long sessions.
 */

export const LOG_DESTINATIONS = ['stdout', 'stderr', 'file', 'syslog'] as const;
export type LogDestination = (typeof LOG_DESTINATIONS)[number];
export const LOG_FORMATS = ['pino', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
/** RFC 5424 facilities by name, as syslog.conf writes them. */
export const SYSLOG_FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
  'ntp',
  'security',
  'console',
  'solaris-cron',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;
export type SyslogFacility = (typeof SYSLOG_FACILITIES)[number];

export type SyslogTarget =
  | { readonly transport: 'udp' | 'tcp'; readonly host: string; readonly port: number }
  | { readonly transport: 'unix'; readonly path: string };

export interface LogOutputConfig {
  readonly destination: LogDestination;
  /** destination = "file": the absolute path (reopened on SIGUSR1). */
  readonly file: string | null;
  /** Where destination = "syslog" sends (null only when the file's value was invalid). */
  readonly syslog: SyslogTarget | null;
  readonly facility: SyslogFacility;
  /** "pino": numeric levels (30), as pino writes them; "json": level names ("info"). */
  readonly format: LogFormat;
  /** In every line (and the syslog header); null: not in lines, the machine's name in syslog headers. */
  readonly hostname: string | null;
  /** An interim access line for each session open this long, and again each time as long again (0: off). */
  readonly accessIntervalMs: number;
}

export const LOG_OUTPUT_FIELDS = {
  destination: {
    kind: 'enum',
    values: LOG_DESTINATIONS,
    default: 'stdout' as LogDestination,
    doc: 'stdout | stderr | file (log.file; reopened on SIGUSR1) | syslog (log.syslog, RFC 5424)',
  },
  file: {
    kind: 'string',
    minLength: 1,
    doc: 'With destination = "file": the log file, relative to the config file; SIGUSR1 reopens it (logrotate)',
  },
  syslog: {
    kind: 'string',
    pattern: '^(udp://.+|tcp://.+|unix:.+)$',
    default: 'unix:/dev/log',
    doc: 'With destination = "syslog": "udp://host:port", "tcp://host:port" (RFC 6587 octet counting) or "unix:PATH" (a datagram socket such as /dev/log)',
  },
  facility: {
    kind: 'enum',
    values: SYSLOG_FACILITIES,
    default: 'daemon' as SyslogFacility,
    doc: 'The syslog facility: daemon, local0-local7, …',
  },
  format: {
    kind: 'enum',
    values: LOG_FORMATS,
    default: 'pino' as LogFormat,
    doc: 'pino: levels as numbers (30), as pino and pino-pretty write them | json: levels as names ("info")',
  },
  hostname: {
    kind: 'string',
    pattern: '^[\\x21-\\x7e]{1,255}$',
    doc: 'Written in every line as "hostname" and in the syslog header (absent: not in lines; the machine\'s name in syslog)',
  },
  access_interval: {
    kind: 'duration',
    default: 0,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'With access = true: an interim access line for each session open this long, and again each time as long again (0: off)',
  },
} satisfies Fields;

function syslogTarget(v: unknown, path: string, p: Problems): SyslogTarget | null {
  const text = v === undefined ? LOG_OUTPUT_FIELDS.syslog.default : v;
  if (typeof text !== 'string') {
    p.add(path, `expected "udp://host:port", "tcp://host:port" or "unix:PATH", got ${describe(v)}`);
    return null;
  }
  if (text.startsWith('unix:') && text.length > 5)
    return { transport: 'unix', path: text.slice(5) };
  const m = /^(udp|tcp):\/\/(.+)$/.exec(text);
  if (m) {
    const hp = parseHostPort(m[2]);
    if ('error' in hp) {
      p.add(path, `${hp.error} (in ${JSON.stringify(text)})`);
      return null;
    }
    return { transport: m[1] as 'udp' | 'tcp', host: hp.host, port: hp.port };
  }
  p.add(path, `expected "udp://host:port", "tcp://host:port" or "unix:PATH", got ${describe(v)}`);
  return null;
}

export function parseLogOutput(
  t: Table,
  path: string,
  baseDir: string,
  p: Problems,
): LogOutputConfig {
  const f = LOG_OUTPUT_FIELDS;
  const destination = oneOfSpec(f.destination, t.destination, `${path}.destination`, p);
  let file: string | null = null;
  if (t.file !== undefined) {
    file = filePath(t.file, `${path}.file`, baseDir, 'a file name', p);
    // Opened for appending: a FIFO there would wait for a reader, a device take the lines.
    const bad = file === null ? null : checkPlace(file, 'file');
    if (bad) p.add(`${path}.file`, `${file}: ${bad.why}`);
  }
  if (destination === 'file' && file === null && t.file === undefined)
    p.add(`${path}.file`, 'missing; destination = "file" needs file = "/var/log/blitz-lb.log"');
  let hostname: string | null = null;
  if (t.hostname !== undefined) {
    if (typeof t.hostname === 'string' && /^[\x21-\x7e]{1,255}$/.test(t.hostname))
      hostname = t.hostname;
    else
      p.add(
        `${path}.hostname`,
        `expected 1-255 printable ASCII characters without spaces (RFC 5424), got ${describe(t.hostname)}`,
      );
  }
  // Checked whatever the destination, so a file ready to switch to syslog is right already.
  const syslog = syslogTarget(t.syslog, `${path}.syslog`, p);
  if (destination === 'syslog' && syslog?.transport === 'unix') {
    // The default (/dev/log) is looked at only where it is used.
    const bad = checkPlace(syslog.path, 'socket');
    if (bad) p.add(`${path}.syslog`, `${syslog.path}: ${bad.why}`);
  }
  return Object.freeze({
    destination,
    file,
    syslog,
    facility: oneOfSpec(f.facility, t.facility, `${path}.facility`, p),
    format: oneOfSpec(f.format, t.format, `${path}.format`, p),
    hostname,
    accessIntervalMs: durationOf(
      f.access_interval,
      t.access_interval,
      `${path}.access_interval`,
      p,
    ),
  });
}

/** [log]'s output keys in the file's shape, for the effective config (`check --print`). */
export function logOutputTable(c: LogOutputConfig, ms: (v: number) => string | number): Table {
  const t: Table = { destination: c.destination };
  if (c.file !== null) t.file = c.file;
  const s = c.syslog;
  if (s)
    t.syslog =
      s.transport === 'unix'
        ? `unix:${s.path}`
        : `${s.transport}://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
  t.facility = c.facility;
  t.format = c.format;
  if (c.hostname !== null) t.hostname = c.hostname;
  t.access_interval = ms(c.accessIntervalMs);
  return t;
}
