import { spawn } from 'node:child_process';
import type { Logger } from '../logger.js';

/**
 * Tells systemd (a Type=notify unit) when the balancer serves, reloads and
 * stops, and which process is the main one after an upgrade (sd_notify(3)).
 *
 * The protocol is one datagram on the Unix socket named by $NOTIFY_SOCKET.
 * Node's dgram speaks UDP only and net only stream sockets, so a datagram
 * needs native code: a compiled addon (and its build on every install), or the
 * `systemd-notify` binary that ships with systemd on every machine that sets
 * $NOTIFY_SOCKET. The binary is the least native code we could own: a spawn
 * per state change (a handful in a process's life, never per session). Run by
 * us, it sends with our PID as its sender when it may (root) and its own
 * otherwise, so the unit says NotifyAccess=all; systemd still takes messages
 * only from the unit's own processes.
 *
 * Messages go one at a time, in order: READY=1 never overtakes the
 * RELOADING=1 before it. With no $NOTIFY_SOCKET (not under systemd, or not
 * Type=notify) every call does nothing.
 */
export class SystemdNotifier {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  constructor(
    private readonly socket: string | undefined,
    private readonly log: Logger,
    private readonly binary = 'systemd-notify',
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv, log: Logger): SystemdNotifier {
    return new SystemdNotifier(env.NOTIFY_SOCKET || undefined, log);
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** Serving: startup done, or a reload finished (either way). */
  ready(): Promise<void> {
    return this.send(['READY=1', 'STATUS=serving']);
  }

  /** A reload begins. MONOTONIC_USEC is what Type=notify-reload (systemd 253+) matches to its SIGHUP. */
  reloading(): Promise<void> {
    return this.send(['RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`, 'STATUS=reloading']);
  }

  /** Stopping: draining open sessions. */
  stopping(): Promise<void> {
    return this.send(['STOPPING=1', 'STATUS=draining']);
  }

  /** After an upgrade: `pid` serves now, and systemd should follow it rather than this process. */
  mainPid(pid: number): Promise<void> {
    return this.send([`MAINPID=${pid}`, 'READY=1', `STATUS=serving (upgraded to pid ${pid})`]);
  }

  /** Resolves once every message asked for so far has gone (or failed): wait for it before exiting. */
  sent(): Promise<void> {
    return this.chain;
  }

  private send(fields: string[]): Promise<void> {
    if (this.socket === undefined) return this.chain;
    const env = { ...process.env, NOTIFY_SOCKET: this.socket };
    this.chain = this.chain.then(
      () =>
        new Promise<void>((resolve) => {
          const child = spawn(this.binary, fields, { env, stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          child.stderr?.on('data', (d: Buffer) => {
            err += d.toString();
          });
          child.once('error', (e) => {
            this.warn(fields, e.message);
            resolve();
          });
          child.once('close', (code) => {
            if (code !== 0) this.warn(fields, err.trim() || `exit ${code}`);
            resolve();
          });
        }),
    );
    return this.chain;
  }

  private warn(fields: string[], reason: string): void {
    // Once: a machine without systemd-notify says so at start, not at every reload.
    if (this.warned) return;
    this.warned = true;
    this.log.warn(
      { notify: fields[0], reason, binary: this.binary },
      'cannot tell systemd our state (is systemd-notify installed?); a Type=notify unit will time out',
    );
  }
}

/** CLOCK_MONOTONIC in microseconds: libuv's hrtime reads that clock on Linux, as systemd does. */
function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}
