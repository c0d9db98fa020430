/**
 * The floor of a TLS-terminating proxy on node:tls, for bench/tls-profile.ts:
 * tls.createServer, one net.connect per client round-robin over the
 * backends, pipe both ways, nothing else. argv: CERT KEY PORT,PORT,...
 * Reports its port over IPC.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:tls';

const [cert, key, ports] = process.argv.slice(2) as [string, string, string];
const backends = ports.split(',').map(Number);
let next = 0;
const server = createServer(
  { cert: readFileSync(cert), key: readFileSync(key), allowHalfOpen: true },
  (client) => {
    const backend = connect({
      port: backends[next++ % backends.length] as number,
      host: '127.0.0.1',
    });
    client.on('error', () => backend.destroy());
    backend.on('error', () => client.destroy());
    client.pipe(backend).pipe(client);
  },
);
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ port: typeof a === 'object' && a ? a.port : 0 });
});
process.on('disconnect', () => process.exit(0));
