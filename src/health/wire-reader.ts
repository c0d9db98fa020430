/**
 * Reads a server's message field by field, every read checked against the
 * message's end: a short or lying packet ends the probe with a verdict
 * (see holdDialogue), never an out-of-range read.
 */
export class WireReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = Math.min(start, end);
  }

  get left(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): number {
    if (n < 0 || this.pos + n > this.end)
      throw new ShortMessageError(`${what}: needs ${n} bytes, ${this.left} left`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(what: string): number {
    return this.buf[this.need(1, what)] as number;
  }

  u16le(what: string): number {
    return this.buf.readUInt16LE(this.need(2, what));
  }

  u32le(what: string): number {
    return this.buf.readUInt32LE(this.need(4, what));
  }

  i32be(what: string): number {
    return this.buf.readInt32BE(this.need(4, what));
  }

  bytes(n: number, what: string): Buffer {
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }

  /** Up to a NUL (consumed); with `orEnd`, the rest of the message when there is none. */
  cstring(what: string, orEnd = false): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) {
      if (!orEnd) throw new ShortMessageError(`${what}: no terminating NUL`);
      return this.rest().toString('utf8');
    }
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  rest(): Buffer {
    const at = this.pos;
    this.pos = this.end;
    return this.buf.subarray(at, this.end);
  }
}

/** A message shorter than its fields say. */
export class ShortMessageError extends Error {
  readonly code = 'LB_ERR_SHORT_MESSAGE';
}
