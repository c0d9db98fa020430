import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';

/** A TLS client of the balancer on loopback; resolves once the handshake is done, rejects when it fails. */
export async function dialTls(port: number, opts: ConnectionOptions): Promise<TLSSocket> {
  const c = tlsConnect({ port, host: '127.0.0.1', ...opts });
  c.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    c.once('secureConnect', resolve);
    c.once('error', reject);
    c.once('close', () => reject(new Error('closed during the handshake')));
  });
  return c;
}
