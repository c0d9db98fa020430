import { request } from 'node:http';
import { isUnixListen } from '../config/admin.js';
import { loadConfig } from '../config/load.js';

/** The image's config, as its CMD names it; BLITZ_LB_CONFIG overrides (a config mounted elsewhere). */
const DEFAULT_CONFIG = '/etc/blitz-lb/config.toml';
const TIMEOUT_MS = 3_000;

/**
 * The image's HEALTHCHECK: GET /livez on the admin server the config
 * declares, exit 0 on 200 and 1 otherwise. Without [admin] there is nothing
 * to ask, and it says healthy (the process being up is all Docker can see).
 * A wildcard listen address is asked on loopback, as it answers there too.
 */
function main(): void {
  const file = process.env.BLITZ_LB_CONFIG || DEFAULT_CONFIG;
  let listen: NonNullable<ReturnType<typeof loadConfig>['admin']>['listen'];
  try {
    const admin = loadConfig(file).admin;
    if (!admin) {
      process.stdout.write('no [admin] in the config: nothing to check\n');
      return;
    }
    listen = admin.listen;
  } catch (err) {
    process.stdout.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const target = isUnixListen(listen)
    ? { socketPath: listen.unix }
    : {
        host: listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host,
        port: listen.port,
      };
  const req = request({ ...target, path: '/livez', timeout: TIMEOUT_MS }, (res) => {
    res.resume();
    process.stdout.write(`/livez: ${res.statusCode}\n`);
    process.exitCode = res.statusCode === 200 ? 0 : 1;
  });
  req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS}ms`)));
  req.on('error', (err) => {
    process.stdout.write(`/livez: ${err.message}\n`);
    process.exitCode = 1;
  });
  req.end();
}

main();
