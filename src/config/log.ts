import { DEFAULTS } from './defaults.js';
import { booleanOf, oneOfSpec, type Problems, type Table } from './fields.js';
import { LOG_OUTPUT_FIELDS, parseLogOutput } from './log-output.js';
import type { Fields } from './spec.js';
import { type Config, LOG_LEVELS } from './types.js';

/** [log]: the level, the access log, and where lines go (log-output.ts). */
export const LOG_FIELDS = {
  level: {
    kind: 'enum',
    values: LOG_LEVELS,
    default: DEFAULTS.logLevel,
    doc: 'trace | debug | info | warn | error | fatal | silent',
  },
  access: {
    kind: 'boolean',
    default: false,
    doc: 'One JSON line per closed session: session id, client, backend, bytes, ms, cause',
  },
  ...LOG_OUTPUT_FIELDS,
} satisfies Fields;

/** The [log] table, already checked for unknown keys. */
export function parseLog(log: Table, baseDir: string, p: Problems): Config['log'] {
  return Object.freeze({
    level: oneOfSpec(LOG_FIELDS.level, log.level, 'log.level', p),
    access: booleanOf(LOG_FIELDS.access, log.access, 'log.access', p),
    ...parseLogOutput(log, 'log', baseDir, p),
  });
}
