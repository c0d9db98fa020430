import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import type { Server } from 'node:net';
import { LbError } from '../errors.js';
import type { Logger } from '../logger.js';
import { readHandOver, UPGRADE_ENV, type UpgradeHandOver } from './passed-sockets.js';
import { socketHandle } from './socket-handle.js';

/** The program an upgrade starts instead of the one on disk (tests: a binary that fails). */
export const UPGRADE_COMMAND_ENV = 'BLITZ_LB_UPGRADE_COMMAND';
/** What the new process tells the old one over IPC once it serves. */
const READY = 'blitz-lb-ready';
/** The start-up failure report is cut here: enough for any config error list, bounded. */
const MAX_REPORT = 8192;
/** Past its own drain (shutdown_timeout), a new process that missed its deadline is killed this much later. */
const KILL_GRACE_MS = 5_000;

export interface SuccessorOptions {
  /** Listening sockets by key (a listen address, or adminKey): each goes to the new process. */
  sockets: ReadonlyMap<string, Server | object>;
  /** The new process must say it serves within this. */
  timeoutMs: number;
  /** shutdown_timeout: a new process stopped for missing its deadline may drain what it accepted for this long. */
  drainMs: number;
  log: Logger;
  /** Default: the `blitz-lb` on disk, as this one was started (same node flags, script and arguments). */
  command?: { file: string; args: string[] };
}

/**
 * The program and arguments of the new process: the script this process
 * was started from, read from disk again (so an upgraded package runs), with
 * the same node flags and arguments; or UPGRADE_COMMAND_ENV with the same
 * arguments.
 */
export function successorCommand(): { file: string; args: string[] } {
  const over = process.env[UPGRADE_COMMAND_ENV];
  if (over) return { file: over, args: process.argv.slice(2) };
  return {
    file: process.execPath,
    args: [...process.execArgv, ...process.argv.slice(1)],
  };
}

/**
 * The listening socket under a net.Server, or the raw handle a cluster
 * worker sent over IPC. child_process passes such a handle to the child as
 * a descriptor (stdio), duplicated: this process keeps accepting on it.
 */
function rawHandle(s: Server | object): object {
  const h = socketHandle(s) ?? s;
  if (typeof h !== 'object' || h === null || typeof (h as { fd?: unknown }).fd !== 'number')
    throw new LbError('LB_ERR_STATE', 'a listener has no socket to hand over');
  return h;
}

/**
 * Starts the new process with every socket in `sockets` and waits until it
 * says it serves. Resolves with its PID; it then runs on its own (its IPC
 * channel is closed). Rejects with the reason (its start-up error, its exit
 * code, or the deadline) when it does not; a process that missed the
 * deadline is stopped. This process is not changed either way.
 */
export function startSuccessor(opts: SuccessorOptions): Promise<number> {
  const { file, args } = opts.command ?? successorCommand();
  const keys = [...opts.sockets.keys()];
  const handles = keys.map((k) => rawHandle(opts.sockets.get(k) as object));
  // fd 3 is the IPC channel, 4 the failure report, the sockets from 5.
  const handOver: UpgradeHandOver = {
    report: 4,
    sockets: Object.fromEntries(keys.map((k, i) => [k, 5 + i])),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, [UPGRADE_ENV]: JSON.stringify(handOver) };
  // A cluster worker's marker would make the new process a worker of nobody.
  delete env.NODE_UNIQUE_ID;
  const child = spawn(file, args, {
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe', ...(handles as never[])],
  });
  const log = opts.log;
  log.info({ newPid: child.pid, file, args, sockets: keys }, 'upgrade: new process started');
  return new Promise((resolve, reject) => {
    let report = '';
    let done = false;
    const reportPipe = child.stdio[4];
    reportPipe?.on('data', (d: Buffer) => {
      if (report.length < MAX_REPORT) report += d.toString('utf8');
    });
    reportPipe?.on('error', () => {});
    const finish = (err: LbError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reportPipe?.destroy();
      if (child.connected) child.disconnect();
      child.unref();
      if (err) reject(err);
      else resolve(child.pid as number);
    };
    const timer = setTimeout(() => {
      finish(
        new LbError(
          'LB_ERR_UPGRADE',
          `the new process (pid ${child.pid}) did not say it serves within ${opts.timeoutMs} ms; it is being stopped`,
        ),
      );
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), opts.drainMs + KILL_GRACE_MS).unref();
    }, opts.timeoutMs);
    child.on('message', (m: unknown) => {
      if ((m as { t?: unknown } | null)?.t === READY) finish(null);
    });
    child.on('error', (err) => {
      finish(new LbError('LB_ERR_UPGRADE', `could not start ${file}: ${err.message}`));
    });
    // 'close', not 'exit': the report pipe has been read to its end by then.
    child.on('close', (code, signal) => {
      const why = report.trim();
      finish(
        new LbError(
          'LB_ERR_UPGRADE',
          `the new process exited (${signal ?? `code ${code}`}) before it served${why ? `: ${why}` : ''}`,
        ),
      );
    });
  });
}

/**
 * The new process's side: it serves now. Closes the failure report and
 * tells the old process over IPC, which then stops accepting and drains.
 * Nothing when this process was not started by an upgrade.
 */
export function announceServing(): void {
  const h = readHandOver(process.env);
  if (!h) return;
  delete process.env[UPGRADE_ENV];
  try {
    if (h.report >= 0) closeSync(h.report);
  } catch {
    // Already gone: the old process gave up on us; it reads nothing more.
  }
  if (process.connected) process.send?.({ t: READY, pid: process.pid });
}

/** The new process's side: why it could not start, written before it exits (synchronously, so exit loses nothing). */
export function reportStartFailure(message: string): void {
  const fd = readHandOver(process.env)?.report ?? -1;
  if (fd < 0) return;
  try {
    writeSync(fd, `${message}\n`);
  } catch {
    // The old process stopped listening (its deadline passed): stderr still has it.
  }
}
