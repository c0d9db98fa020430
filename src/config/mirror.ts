import { describe } from './duration.js';
import { hostPort, integerOf, optionalTable } from './fields.js';
import { type Fields, keysOf } from './spec.js';

/** [services.NAME.mirror]: a copy of a sampled share of the client's bytes to a shadow backend. */
export interface MirrorConfig {
  /** "host:port", canonical. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Whole percent of sessions mirrored (0-100). */
  readonly percent: number;
  /** Bytes the mirror connection may hold unsent; past it the mirror (never the session) is dropped. */
  readonly bufferBytes: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: KIB,
  MiB: MIB,
  GiB: GIB,
  KB: 1000,
  MB: 1e6,
  GB: 1e9,
};
export const MIRROR_BUFFER_DEFAULT = MIB;
const BUFFER_MIN = 16 * KIB;
const BUFFER_MAX = GIB;

export const MIRROR_FIELDS = {
  backend: {
    kind: 'address',
    required: true,
    doc: 'The shadow backend "host:port" the copy goes to (plain TCP)',
  },
  percent: {
    kind: 'integer',
    default: 100,
    min: 0,
    max: 100,
    doc: 'Share of sessions mirrored, in whole percent (every 100/percent-th session, per process)',
  },
  buffer: {
    kind: 'anyOf',
    default: '1MiB',
    options: [
      { kind: 'integer', min: BUFFER_MIN, max: BUFFER_MAX, doc: 'Bytes' },
      {
        kind: 'string',
        pattern: '^[0-9]+(\\.[0-9]+)?\\s*(B|KiB|MiB|GiB|KB|MB|GB)$',
        doc: 'A size with a unit: "256KiB", "1MiB", "4MB"',
      },
    ],
    doc: 'Bytes a mirror connection may hold unsent (16KiB-1GiB); past it the mirror connection is dropped, never the session',
  },
} satisfies Fields;
export const MIRROR_KEYS = keysOf(MIRROR_FIELDS);

/** A byte size: whole bytes, or "1.5MiB"-style text; an error text when it is neither. */
export function parseByteSize(v: unknown): number | { error: string } {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v;
    return { error: `expected whole bytes or a size such as "1MiB", got ${describe(v)}` };
  }
  if (typeof v === 'string') {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)$/.exec(v.trim());
    const unit = m ? UNITS[m[2] as string] : undefined;
    if (m && unit !== undefined) return Math.round(Number(m[1]) * unit);
  }
  return {
    error: `expected whole bytes or a size such as "256KiB", "1MiB" (units B, KiB, MiB, GiB, KB, MB, GB), got ${describe(v)}`,
  };
}

export const parseMirror = optionalTable(MIRROR_KEYS, (t, path, p): MirrorConfig | null => {
  let target = undefined as ReturnType<typeof hostPort>;
  if (t.backend === undefined)
    p.add(`${path}.backend`, 'missing; a mirror needs backend = "host:port"');
  else target = hostPort(t.backend, `${path}.backend`, p);
  const percent = integerOf(MIRROR_FIELDS.percent, t.percent, `${path}.percent`, p, 100);
  let bufferBytes = MIRROR_BUFFER_DEFAULT;
  if (t.buffer !== undefined) {
    const r = parseByteSize(t.buffer);
    if (typeof r !== 'number') p.add(`${path}.buffer`, r.error);
    else if (r < BUFFER_MIN || r > BUFFER_MAX)
      p.add(
        `${path}.buffer`,
        `must be 16KiB-1GiB (${BUFFER_MIN}-${BUFFER_MAX} bytes), got ${describe(t.buffer)}`,
      );
    else bufferBytes = r;
  }
  if (!target) return null;
  return Object.freeze({
    address: target.address,
    host: target.host,
    port: target.port,
    percent,
    bufferBytes,
  });
});
