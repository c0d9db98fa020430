/**
 * The embedded client API, as in the module blitz-lb descends from: build a
 * balancer in your own process, add backends, and ask it for connected
 * sockets. Outside this repository, import from 'blitz-lb'.
 */
import { once } from 'node:events';
import { LoadBalancer, parseConfig } from '../src/index.js';

export async function main(backendPorts: number[]): Promise<string[]> {
  // A service needs no listener to be useful in-process; port 0 binds an unused one.
  const lb = new LoadBalancer(
    parseConfig(
      {
        services: {
          api: {
            listen: '127.0.0.1:0',
            backends: [`127.0.0.1:${backendPorts[0]}`],
            health: { kind: 'tcp', interval: '5s' },
            pool: { min_idle: 2 },
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
    // A warm pooled socket when there is one; retried on another backend if a dial fails.
    const socket = await lb.connect('api', { signal: AbortSignal.timeout(2000) });
    socket.end('GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    await once(socket, 'end');
    answers.push(Buffer.concat(chunks).toString().split('\r\n\r\n')[1] ?? '');
  }

  await lb.performHealthCheck(); // one probe round now
  lb.cleanupConnections(); // reap idle pooled sockets past idle_ttl now
  await lb.close();
  return answers;
}
