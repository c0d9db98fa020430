/**
 * The far backend of bench/pool-rtt.ts, run inside its network namespace:
 * an echo server that behaves as if it were one round trip away. This
 * kernel has no netem, so the delay is the server's: a new connection may
 * not be answered until one RTT after it was accepted (the handshake's round
 * trip, which a pooled socket paid long before its client came), and each
 * reply leaves one RTT after its request arrived (half there, half back).
 *
 *   node dist/bench/rtt-backend.js HOST PORT RTT_MS     (prints "ready")
 */
import { createServer, type Socket } from 'node:net';

const [host = '127.0.0.1', portText = '0', rttText = '20'] = process.argv.slice(2);
const rtt = Number(rttText);

const server = createServer((s: Socket) => {
  const readyAt = Date.now() + rtt;
  s.on('error', () => {});
  s.on('data', (d: Buffer) => {
    const wait = Math.max(Date.now(), readyAt) + rtt - Date.now();
    setTimeout(() => {
      if (!s.destroyed) s.write(d);
    }, wait);
  });
  s.on('end', () => s.end());
});
server.listen(Number(portText), host, () => {
  process.stdout.write('ready\n');
});
