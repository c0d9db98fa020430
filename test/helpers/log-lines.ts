import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

/** A real logger whose JSON lines land in `lines`, for tests that read the access log. */
export function logLines(level: Parameters<typeof createLogger>[0] = 'info'): {
  logger: Logger;
  lines: Record<string, unknown>[];
  access: () => Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return {
    logger: createLogger(level, sink),
    lines,
    access: () => lines.filter((l) => l.log === 'access'),
  };
}
