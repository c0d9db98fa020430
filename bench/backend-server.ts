/**
 * Bench backends, in their own process so they do not share a core's event
 * loop with the balancer: N HTTP servers on 127.0.0.1:0, each answering a
 * small fixed body. Prints the ports as one JSON line, then serves until killed.
 * `node backend-server.js N [PORT...]`. With BENCH_TLS_CERT and BENCH_TLS_KEY
 * (PEM files) in the environment they serve HTTPS instead.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type RequestListener } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';

const n = Number(process.argv[2] ?? 3);
/** Optional fixed ports (argv[3..]), so a soak can kill a backend and restart it on the same port. */
const fixed = process.argv.slice(3).map(Number);
const body = Buffer.from('hello from a bench backend\n');
const ports: number[] = [];
const answer: RequestListener = (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
};
const { BENCH_TLS_CERT: certFile, BENCH_TLS_KEY: keyFile } = process.env;
const tls =
  certFile && keyFile ? { cert: readFileSync(certFile), key: readFileSync(keyFile) } : null;
for (let i = 0; i < n; i++) {
  const server = tls ? createHttps(tls, answer) : createHttp(answer);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(fixed[i] ?? 0, '127.0.0.1', 511, r));
  ports.push((server.address() as AddressInfo).port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
