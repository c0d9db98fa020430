import assert from 'node:assert/strict';
import fc from 'fast-check';

/**
 * Runs `parse` on `bytes` three ways: an exact copy, and views of the same
 * bytes inside larger buffers (bytes before them, and 0x00 or 0xff after
 * them). A parser that reads only what it was given answers the same each
 * time; one that reads past its end (an index past `length`, the underlying
 * ArrayBuffer, a wrong offset) sees the padding and answers differently, or
 * throws. Returns the answer. Any throw fails the property that calls it.
 */
export function confined<T>(parse: (b: Buffer) => T, bytes: Uint8Array): T {
  const exact = parse(Buffer.from(bytes));
  for (const fill of [0x00, 0xff]) {
    const pad = Buffer.alloc(bytes.length + 64, fill);
    pad.set(bytes, 32);
    const view = pad.subarray(32, 32 + bytes.length);
    assert.deepEqual(parse(view), exact, `read past its input (padding 0x${fill.toString(16)})`);
  }
  return exact;
}

/** A valid input with a few bytes replaced, inserted or removed, then maybe cut short. */
export function mutated(valid: Buffer, maxEdits = 4): fc.Arbitrary<Buffer> {
  const edit = fc.tuple(
    fc.constantFrom('replace', 'insert', 'delete'),
    fc.nat(Math.max(0, valid.length)),
    fc.integer({ min: 0, max: 255 }),
  );
  return fc
    .tuple(fc.array(edit, { minLength: 1, maxLength: maxEdits }), fc.nat(valid.length + maxEdits))
    .map(([edits, cut]) => {
      const b = [...valid];
      for (const [op, at, byte] of edits) {
        const i = Math.min(at, b.length);
        if (op === 'insert') b.splice(i, 0, byte);
        else if (i < b.length) {
          if (op === 'replace') b[i] = byte;
          else b.splice(i, 1);
        }
      }
      return Buffer.from(b.slice(0, Math.max(cut, 1)));
    });
}

/**
 * The cumulative buffers a reader sees when `whole` arrives in chunks of the
 * given sizes (the last chunk takes the rest): what a parser is handed on
 * each 'data' event when it is re-run on everything received so far.
 */
export function arrivals(whole: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= whole.length) break;
    at = Math.min(whole.length, at + Math.max(1, n));
    out.push(whole.subarray(0, at));
  }
  if (at < whole.length) out.push(whole);
  return out;
}

/** Chunk sizes for arrivals(): 1 to `max` bytes each. */
export function chunkSizes(max = 16): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 1, max }), { maxLength: 40 });
}
