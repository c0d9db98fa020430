/**
 * Bulk-transfer peer for the bench, in its own process. A client sends one
 * command byte: 'U' + an 8-byte length, then that many bytes, and gets back
 * the count as 8 bytes; 'D' + an 8-byte length gets that many bytes, then a FIN. Idle
 * connections (a warm pool's) are left alone until they speak. The upload
 * carries its length rather than relying on half-close, which node-tcp-proxy
 * does not carry.
 */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';

const block = Buffer.alloc(1 << 20, 0x61);

const server = createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  let mode = '';
  let expected = 0;
  let counted = 0;
  let header = Buffer.alloc(0);
  const uploaded = (): void => {
    const out = Buffer.alloc(8);
    out.writeBigUInt64BE(BigInt(counted));
    s.end(out);
  };
  s.on('data', (d: Buffer) => {
    if (mode === 'U') {
      counted += d.length;
      if (counted >= expected) uploaded();
      return;
    }
    header = Buffer.concat([header, d]);
    if (header.length < 9) return;
    const len = Number(header.readBigUInt64BE(1));
    if (header[0] === 0x55) {
      mode = 'U';
      expected = len;
      counted = header.length - 9;
      if (counted >= expected) uploaded();
    } else if (header[0] === 0x44) {
      mode = 'D';
      send(s, len);
    }
  });
});

function send(s: import('node:net').Socket, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, block.length);
      left -= n;
      if (!s.write(n === block.length ? block : block.subarray(0, n))) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
