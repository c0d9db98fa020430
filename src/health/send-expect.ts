import type { ExpectConfig, ProbeStepConfig } from '../config/health-steps.js';
import type { Step, StepVerdict } from './exchange.js';

/** Printable form of a wanted text, for details: control bytes as escapes. */
function shown(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function checkFor(e: ExpectConfig): { check: (got: Buffer) => StepVerdict; what: string } {
  switch (e.kind) {
    case 'string': {
      const want = Buffer.from(e.value, 'utf8');
      return { check: (got) => got.includes(want) || null, what: `expect ${shown(e.value)}` };
    }
    case 'hex': {
      const want = Buffer.from(e.value, 'hex');
      return { check: (got) => got.includes(want) || null, what: `expect_hex ${e.value}` };
    }
    case 'regex': {
      // Compiled once per checker (the config holds the source, checked at load); latin1 keeps every byte one char.
      const re = new RegExp(e.value);
      return {
        check: (got) => re.test(got.toString('latin1')) || null,
        what: `expect_regex /${e.value}/`,
      };
    }
  }
}

/**
 * kind = "send-expect" (HAProxy tcp-check send/expect, gobetween's probe):
 * the configured steps, each waiting for its expectation until the timeout.
 * A reply that never matches fails at the deadline, or when the server closes.
 */
export function sendExpectSteps(cfg: readonly ProbeStepConfig[]): Step[] {
  return cfg.map((s, i) => {
    const send = s.sendHex === null ? null : Buffer.from(s.sendHex, 'hex');
    if (s.expect === null) return { send, check: null, what: `step ${i + 1}` };
    const { check, what } = checkFor(s.expect);
    return { send, check, what: `step ${i + 1} ${what}` };
  });
}
