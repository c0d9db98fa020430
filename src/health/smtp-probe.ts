import type { Step, StepVerdict } from './exchange.js';

/**
 * The greeting: "220 host ESMTP…", possibly over several "220-" lines. A
 * 554 is a server that refuses this client (or everyone) for now.
 */
function banner(got: Buffer): StepVerdict {
  const text = got.toString('latin1');
  let at = 0;
  for (;;) {
    const end = text.indexOf('\n', at);
    if (end < 0) return null;
    const line = text.slice(at, end).replace(/\r$/, '');
    if (!line.startsWith('220')) return `smtp: ${line.slice(0, 120)}`;
    if (line[3] !== '-') return true;
    at = end + 1;
  }
}

/** kind = "smtp": a 220 banner, then a polite QUIT. */
export function smtpSteps(): Step[] {
  return [
    { send: null, check: banner, what: 'a 220 banner' },
    { send: Buffer.from('QUIT\r\n'), check: null, what: 'QUIT' },
  ];
}
