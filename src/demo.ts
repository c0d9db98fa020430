import { createServer, type Server } from 'node:http';
import { isLoopback } from './config/address.js';
import type { Config } from './config/schema.js';
import { errnoText } from './errno.js';

/**
 * The demo's backends: one small HTTP server per loopback backend address in
 * the config, each answering with its own name so a curl shows the rotation.
 */
export async function startDemoBackends(config: Config): Promise<Server[]> {
  const servers: Server[] = [];
  let n = 0;
  for (const svc of config.services) {
    for (const b of svc.backends) {
      if (!isLoopback(b.host)) continue;
      const name = `backend-${++n}`;
      const server = createServer((req, res) => {
        req.resume();
        const body = `hello from ${name} (${b.address}), you asked for ${req.url}\n`;
        res.writeHead(200, {
          'content-type': 'text/plain',
          'content-length': Buffer.byteLength(body),
          'x-backend': name,
        });
        res.end(body);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(b.port, b.host, () => {
          server.removeListener('error', reject);
          resolve();
        });
      }).catch((err: NodeJS.ErrnoException) => {
        for (const s of servers) s.close();
        throw new Error(`demo backend ${b.address}: ${errnoText(err)}`);
      });
      servers.push(server);
    }
  }
  return servers;
}
