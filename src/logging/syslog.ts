import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { SyslogFacility, SyslogTarget } from '../config/log-output.js';
import { SYSLOG_FACILITIES } from '../config/log-output.js';

/**
 * Log lines to syslog, RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME blitz-lb PID MSGID - MSG`,
 * the message being the JSON line as pino wrote it (MSGID "access" for access
 * lines). A small formatter over node:dgram (UDP) and node:net (TCP, framed
 * with RFC 6587 octet counting), rather than pino-syslog + pino-socket: two
 * dependencies and a worker thread for what is a header and a send, and
 * neither reaches a Unix datagram socket. Node cannot send Unix datagrams
 * (/dev/log, journald, rsyslog's imuxsock), so "unix:PATH" feeds one
 * long-lived util-linux `logger` (always installed on Debian and most Linux)
 * that builds the same header and sends each line it reads.
 *
 * Never throws and never blocks the caller: a syslog server that is away
 * costs lines (counted in `dropped`), not sessions.
 */

/** pino's levels to RFC 5424 severities. */
function severity(level: number): number {
  if (level >= 60) return 2; // fatal: critical
  if (level >= 50) return 3; // error
  if (level >= 40) return 4; // warning
  if (level >= 30) return 6; // informational
  return 7; // debug, trace
}
const LEVEL_NAMES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};
/** The level at the start of a pino line, as a number ("level":30) or a name ("level":"info"). */
const LEVEL_RE = /^\{"level":(?:(\d+)|"([a-z]+)")/;

/** The PRI of a line: facility * 8 + severity. */
export function priorityOf(line: string, facility: number): number {
  const m = LEVEL_RE.exec(line);
  const level = m ? (m[1] !== undefined ? Number(m[1]) : (LEVEL_NAMES[m[2] as string] ?? 30)) : 30;
  return facility * 8 + severity(level);
}

export function facilityCode(name: SyslogFacility): number {
  return SYSLOG_FACILITIES.indexOf(name);
}

/** Lines kept while a TCP syslog server is away; beyond, the oldest go. */
const TCP_BACKLOG = 1000;
const MAX_RECONNECT_MS = 5000;

export class SyslogStream {
  /** Lines that could not be sent (server away, backlog full, a send failing). */
  dropped = 0;
  private readonly facility: number;
  private readonly host: string;
  private udp: UdpSocket | null = null;
  private tcp: Socket | null = null;
  private tcpUp = false;
  private backlog: string[] = [];
  private reconnectMs = 100;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private logger: ChildProcess | null = null;
  private closed = false;

  constructor(
    private readonly target: SyslogTarget,
    facility: SyslogFacility,
    hostname: string | null,
    private readonly onProblem: (message: string) => void = () => {},
  ) {
    this.facility = facilityCode(facility);
    this.host = hostname ?? osHostname() ?? '-';
    if (target.transport === 'udp') {
      const t = target;
      this.udp = createSocket(isIP(t.host) === 6 ? 'udp6' : 'udp4');
      this.udp.on('error', () => {
        this.dropped++;
      });
      this.udp.unref();
    } else if (target.transport === 'tcp') this.connectTcp();
    else this.startLogger();
  }

  /** pino's DestinationStream: one JSON line (with its newline). */
  write(line: string): boolean {
    if (this.closed) return true;
    const body = line.endsWith('\n') ? line.slice(0, -1) : line;
    const pri = priorityOf(body, this.facility);
    const t = this.target;
    if (t.transport === 'unix') {
      const stdin = this.logger?.stdin;
      if (stdin?.writable) stdin.write(`<${pri}>${body}\n`);
      else this.dropped++;
      return true;
    }
    const msgid = body.includes('"log":"access"') ? 'access' : '-';
    const msg = `<${pri}>1 ${new Date().toISOString()} ${this.host} blitz-lb ${process.pid} ${msgid} - ${body}`;
    if (t.transport === 'udp') {
      this.udp?.send(msg, t.port, t.host, (err) => {
        if (err) this.dropped++;
      });
      return true;
    }
    const framed = `${Buffer.byteLength(msg)} ${msg}`;
    if (this.tcpUp && this.tcp) this.tcp.write(framed);
    else {
      if (this.backlog.length >= TCP_BACKLOG) {
        this.backlog.shift();
        this.dropped++;
      }
      this.backlog.push(framed);
    }
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.udp?.close();
    this.udp = null;
    this.tcp?.end();
    this.logger?.stdin?.end();
  }

  private connectTcp(): void {
    if (this.target.transport !== 'tcp' || this.closed) return;
    const { host, port } = this.target;
    const s = connect({ host, port });
    this.tcp = s;
    s.setNoDelay(true);
    s.unref();
    s.on('connect', () => {
      this.tcpUp = true;
      this.reconnectMs = 100;
      const lines = this.backlog;
      this.backlog = [];
      for (const l of lines) s.write(l);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.tcp !== s) return;
      this.tcpUp = false;
      this.tcp = null;
      if (this.closed) return;
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.connectTcp();
      }, this.reconnectMs);
      this.reconnectTimer.unref();
      this.reconnectMs = Math.min(this.reconnectMs * 2, MAX_RECONNECT_MS);
    });
  }

  private startLogger(): void {
    if (this.target.transport !== 'unix' || this.closed) return;
    const args = [
      '--rfc5424=notq',
      '--prio-prefix',
      '--tag',
      'blitz-lb',
      `--id=${process.pid}`,
      '--socket',
      this.target.path,
      '--udp',
      '--size',
      '65000',
      '--socket-errors=on',
    ];
    const child = spawn('logger', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.logger = child;
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdin?.on('error', () => {});
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.on('error', (e) => {
      this.onProblem(
        `syslog: cannot start logger (util-linux) for unix:${this.target.transport === 'unix' ? this.target.path : ''}: ${e.message}`,
      );
    });
    child.on('exit', (code) => {
      if (this.logger !== child) return;
      this.logger = null;
      if (this.closed) return;
      this.onProblem(
        `syslog: logger exited (${code}): ${err.trim() || 'no reason given'}; restarting in 1s`,
      );
      const timer = setTimeout(() => this.startLogger(), 1000);
      timer.unref();
    });
  }
}
