import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * A real ClientHello, as node:tls (OpenSSL) sends it: a raw server reads the
 * first record and closes. One record for any hello under 16 KiB.
 */
export async function captureHello(opts: {
  servername?: string;
  ALPNProtocols?: string[];
}): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (s: Socket) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          s.destroy();
          resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
        }
      });
    });
  });
  const c = tlsConnect({ port, host: '127.0.0.1', ...opts, rejectUnauthorized: false });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

/** The same handshake message cut into records of the given fragment sizes (the last takes the rest). */
export function refragment(hello: Buffer, sizes: number[]): Buffer {
  const body = hello.subarray(5);
  const out: Buffer[] = [];
  let p = 0;
  for (const n of sizes) {
    if (p >= body.length) break;
    const part = body.subarray(p, Math.min(body.length, p + Math.max(1, n)));
    out.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
    p += part.length;
  }
  if (p < body.length) {
    const part = body.subarray(p);
    out.push(Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(out);
}

/** ALPN entries that make a hello of more than `bytes` (each name 200 bytes; the real one last). */
export function bigAlpn(bytes: number, real = 'http/1.1'): string[] {
  const n = Math.ceil(bytes / 201);
  return [...Array.from({ length: n }, (_, i) => `x-${i}-${'p'.repeat(190)}`), real];
}
