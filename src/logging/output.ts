import { pino } from 'pino';
import type { LogOutputConfig } from '../config/log-output.js';
import { SyslogStream } from './syslog.js';

/**
 * Where the process's log lines go ([log] destination), opened once at start.
 * A file is pino's own destination (sonic-boom), written synchronously as
 * stdout is, and reopened by `reopen()` (SIGUSR1) after logrotate has moved
 * it: the old name keeps what was written, the new file takes what follows.
 */
export interface LogOutput {
  /** Null: stdout, pino's default. */
  readonly stream: pino.DestinationStream | null;
  /** Reopens a file destination by its name (nothing for the others). */
  reopen(): void;
  /** Lines lost on the way (syslog only; 0 for the others). */
  readonly dropped: number;
  close(): void;
}

export function openLogOutput(
  cfg: LogOutputConfig,
  onProblem: (message: string) => void = (m) => process.stderr.write(`blitz-lb: ${m}\n`),
): LogOutput {
  switch (cfg.destination) {
    case 'stdout':
      return { stream: null, reopen: () => {}, dropped: 0, close: () => {} };
    case 'stderr': {
      const s = pino.destination({ dest: 2, sync: true });
      return { stream: s, reopen: () => {}, dropped: 0, close: () => {} };
    }
    case 'file': {
      const s = pino.destination({
        dest: cfg.file as string,
        sync: true,
        append: true,
        mkdir: true,
      });
      return {
        stream: s,
        reopen: () => s.reopen(),
        dropped: 0,
        close: () => s.end(),
      };
    }
    case 'syslog': {
      const s = new SyslogStream(
        cfg.syslog ?? { transport: 'unix', path: '/dev/log' },
        cfg.facility,
        cfg.hostname,
        onProblem,
      );
      return {
        stream: s,
        reopen: () => {},
        get dropped() {
          return s.dropped;
        },
        close: () => s.close(),
      };
    }
  }
}
