/**
 * The Node peer for the bench: node-tcp-proxy (npm) in its own process,
 * round-robin over the given backends. argv: listenPort host,host,... port,port,...
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { createProxy } = require('node-tcp-proxy') as {
  createProxy: (
    port: number,
    hosts: string,
    ports: string,
    opts: Record<string, unknown>,
  ) => unknown;
};
const [port, hosts, ports] = process.argv.slice(2) as [string, string, string];
createProxy(Number(port), hosts, ports, { hostname: '127.0.0.1', quiet: true });
process.stdout.write('ready\n');
