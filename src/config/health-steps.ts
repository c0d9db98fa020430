import { describe } from './duration.js';
import { checkKeys, isTable, type Problems } from './fields.js';
import { type Fields, keysOf } from './spec.js';

/*
 * The steps of a send-expect health probe (`steps = [{ send, expect }, ...]`
 * in [services.NAME.health]): each checked here once, its bytes as hex, so
 * the probe (health/send-expect.ts) gets plain frozen data.
 */

/** What a send-expect step waits for: a substring, a regex (source text; compiled by the probe), or bytes (hex). */
export interface ExpectConfig {
  readonly kind: 'string' | 'regex' | 'hex';
  readonly value: string;
}

/** One step: bytes to send (as hex, so the config stays plain frozen data), then what must come back. */
export interface ProbeStepConfig {
  readonly sendHex: string | null;
  readonly expect: ExpectConfig | null;
}

export const STEP_FIELDS = {
  send: { kind: 'string', minLength: 1, doc: 'Text to send (UTF-8)' },
  send_hex: { kind: 'string', minLength: 1, doc: 'Bytes to send, as hex pairs ("2a310d0a")' },
  expect: { kind: 'string', minLength: 1, doc: 'The reply must contain this text' },
  expect_regex: {
    kind: 'string',
    minLength: 1,
    doc: 'The reply must match this regular expression',
  },
  expect_hex: {
    kind: 'string',
    minLength: 1,
    doc: 'The reply must contain these bytes (hex pairs)',
  },
} satisfies Fields;
const STEP_KEYS = keysOf(STEP_FIELDS);

/** Hex bytes, spaces allowed between pairs ("2a 31 0d 0a"), normalised to lower case without spaces; null if not hex. */
export function normalHex(v: string): string | null {
  const h = v.replace(/\s+/g, '').toLowerCase();
  return h.length > 0 && h.length % 2 === 0 && /^[0-9a-f]+$/.test(h) ? h : null;
}

function step(v: unknown, path: string, p: Problems): ProbeStepConfig | null {
  if (!isTable(v)) {
    p.add(
      path,
      `expected a table such as { send = "PING\\r\\n", expect = "+PONG" }, got ${describe(v)}`,
    );
    return null;
  }
  checkKeys(v, STEP_KEYS, path, p);
  const sends = ['send', 'send_hex'].filter((k) => v[k] !== undefined);
  const expects = ['expect', 'expect_regex', 'expect_hex'].filter((k) => v[k] !== undefined);
  if (sends.length > 1) p.add(path, 'give send or send_hex, not both');
  if (expects.length > 1) p.add(path, 'give one of expect, expect_regex, expect_hex');
  if (sends.length + expects.length === 0)
    p.add(path, 'a step needs send, send_hex, expect, expect_regex or expect_hex');
  let sendHex: string | null = null;
  for (const k of ['send', 'send_hex', 'expect', 'expect_regex', 'expect_hex']) {
    const x = v[k];
    if (x !== undefined && (typeof x !== 'string' || x.length === 0))
      p.add(`${path}.${k}`, `expected a non-empty string, got ${describe(x)}`);
  }
  if (typeof v.send === 'string' && v.send.length > 0)
    sendHex = Buffer.from(v.send, 'utf8').toString('hex');
  if (typeof v.send_hex === 'string' && v.send_hex.length > 0) {
    sendHex = normalHex(v.send_hex);
    if (sendHex === null)
      p.add(
        `${path}.send_hex`,
        `expected pairs of hex digits such as "2a310d0a", got ${describe(v.send_hex)}`,
      );
  }
  let expect: ExpectConfig | null = null;
  if (typeof v.expect === 'string' && v.expect.length > 0)
    expect = { kind: 'string', value: v.expect };
  if (typeof v.expect_regex === 'string' && v.expect_regex.length > 0) {
    try {
      new RegExp(v.expect_regex);
      expect = { kind: 'regex', value: v.expect_regex };
    } catch (err) {
      p.add(`${path}.expect_regex`, `does not compile: ${(err as Error).message}`);
    }
  }
  if (typeof v.expect_hex === 'string' && v.expect_hex.length > 0) {
    const h = normalHex(v.expect_hex);
    if (h === null)
      p.add(
        `${path}.expect_hex`,
        `expected pairs of hex digits such as "2b504f4e47", got ${describe(v.expect_hex)}`,
      );
    else expect = { kind: 'hex', value: h };
  }
  return Object.freeze({ sendHex, expect: expect && Object.freeze(expect) });
}

/** `steps` of [services.NAME.health]: required by kind = "send-expect", refused by any other `kind`. */
export function probeSteps(
  v: unknown,
  kind: string,
  path: string,
  p: Problems,
): readonly ProbeStepConfig[] {
  if (v === undefined) {
    if (kind === 'send-expect')
      p.add(path, 'kind = "send-expect" needs steps = [{ send = "...", expect = "..." }, ...]');
    return Object.freeze([]);
  }
  if (kind !== 'send-expect')
    p.add(path, `steps apply to kind = "send-expect" only (kind is "${kind}")`);
  if (!Array.isArray(v) || v.length === 0) {
    p.add(path, `expected a non-empty array of steps, got ${describe(v)}`);
    return Object.freeze([]);
  }
  const out: ProbeStepConfig[] = [];
  v.forEach((s, i) => {
    const st = step(s, `${path}[${i}]`, p);
    if (st) out.push(st);
  });
  return Object.freeze(out);
}
