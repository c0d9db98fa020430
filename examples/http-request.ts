/**
 * The module blitz-lb descends from, as its README opened: add three
 * backends, forward a request, read the status and body, run a health check
 * and clean up. Outside this repository, import from 'blitz-lb'.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { LoadBalancer, parseConfig } from '../src/index.js';

export async function main(backendPorts: number[]): Promise<string[]> {
  // A service needs no clients of its own to be used from code; port 0 binds an unused one.
  const lb = new LoadBalancer(
    parseConfig(
      {
        services: {
          api: {
            listen: '127.0.0.1:0',
            backends: [`127.0.0.1:${backendPorts[0]}`],
            health: { kind: 'http', path: '/', interval: '5s' },
            request_timeout: '5s',
          },
        },
      },
      { allowEphemeralListen: true },
    ),
  );
  await lb.start();
  lb.addBackend('api', `127.0.0.1:${backendPorts[1]}`);
  lb.addBackend('api', `127.0.0.1:${backendPorts[2]}`, { weight: 2 });

  const answers: string[] = [];
  for (let i = 0; i < 4; i++) {
    // Picked by the strategy, over a kept-alive connection, retried elsewhere if a connect fails.
    const res = await lb.request('api', {
      method: 'GET',
      path: '/api/data',
      headers: { accept: 'text/plain' },
    });
    answers.push(`${res.statusCode} ${res.text()}`);
  }

  await lb.performHealthCheck(); // one probe round now
  lb.cleanupConnections(); // reap idle pooled sockets past idle_ttl now
  await lb.close();
  return answers;
}

// Run directly (`node dist/examples/http-request.js`): three small backends on loopback first.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const servers = ['a', 'b', 'c'].map((name) =>
    createServer((req, res) => {
      req.resume();
      res.end(`backend ${name}`);
    }).listen(0, '127.0.0.1'),
  );
  await Promise.all(servers.map((s) => once(s, 'listening')));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  for (const line of await main(ports)) console.log(line);
  for (const s of servers) s.close();
}
