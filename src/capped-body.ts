import type { Readable } from 'node:stream';

/**
 * Reads a whole body (an HTTP request or answer) with a cap. A leaf: the admin
 * API's write calls and the Kubernetes client both read with it. The two differ
 * only in what past the cap means, so that is the caller's to say:
 * - `keep`: bytes kept; more are counted but not kept (the caller sees `size`);
 * - `stopAt`: past this many bytes `over()` is the answer at once, and `stop`,
 *   when given, is told (to end the stream rather than read it to its end);
 * - `cut(err)`: the answer when the stream fails (`err`) or closes before its end.
 */
export interface BodyCap {
  readonly keep: number;
  readonly stopAt: number;
  readonly over: () => Error;
  readonly stop?: (err: Error) => void;
  readonly cut: (err?: Error) => Error;
}

/** The text (UTF-8) of the first `keep` bytes, and how many bytes came in all. */
export function readCapped(
  stream: Readable,
  cap: BodyCap,
): Promise<{ text: string; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= cap.keep) chunks.push(d);
      else if (size > cap.stopAt) {
        const err = cap.over();
        reject(err);
        cap.stop?.(err);
      }
    });
    stream.on('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), size }));
    stream.on('error', (err) => reject(cap.cut(err)));
    // After 'end' this is a no-op: the promise has settled.
    stream.on('close', () => reject(cap.cut()));
  });
}
