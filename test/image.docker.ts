/**
 * The container image, built and run for real (npm run test:image; not part of
 * npm test: building takes a minute, and the stand-in base image a few the
 * first time). test/image/run.sh starts dockerd when none answers and builds a
 * stand-in for the base image when it cannot be pulled; this file builds the
 * project's Dockerfile unchanged, runs it with the host's network, and sends
 * sessions through it to backends on the host's loopback.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { namedServer, session } from './helpers/discovery.js';
import { readBytes, waitFor } from './helpers/servers.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const env = { ...process.env, DOCKER_BUILDKIT: '0' };

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { env, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

async function dockerUp(): Promise<string | null> {
  try {
    await docker('info', '--format', '{{.ServerVersion}}');
    return null;
  } catch (err) {
    return (err as Error).message.split('\n').slice(0, 2).join(' ');
  }
}

/** A port free on 127.0.0.1 now (the container binds it on the host's network). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.on('error', () => resolve(true));
  });
}

const config = (lbPort: number, adminPort: number, backend: string) => `
[process]
shutdown_timeout = "20s"

[admin]
listen = "127.0.0.1:${adminPort}"

[services.web]
listen = "127.0.0.1:${lbPort}"
backends = ["${backend}"]
health = { kind = "tcp", interval = "200ms" }
`;

test('image: builds, runs as non-root on a read-only root, serves, reloads on HUP, stops gracefully on docker stop', async (t) => {
  const down = await dockerUp();
  if (down) {
    t.skip(`dockerd does not answer (${down}); test/image/run.sh starts one`);
    return;
  }
  const tag = `blitz-lb-test:${process.pid}`;
  const name = `blitz-lb-test-${process.pid}`;
  const dangling = new Set((await docker('images', '-q', '--filter', 'dangling=true')).split('\n'));
  t.after(async () => {
    await docker('rm', '-f', name).catch(() => '');
    await docker('rmi', '-f', tag).catch(() => '');
    // The build stage's image is left untagged: remove those this build made, and no other.
    const now = (await docker('images', '-q', '--filter', 'dangling=true')).split('\n');
    const made = now.filter((id) => id !== '' && !dangling.has(id));
    if (made.length > 0) await docker('rmi', '-f', ...made).catch(() => '');
  });
  await docker('build', '--network', 'host', '--force-rm', '-t', tag, root);

  const labels = JSON.parse(
    await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', tag),
  );
  assert.equal(labels['org.opencontainers.image.version'], pkg.version);
  assert.equal(labels['org.opencontainers.image.licenses'], 'MIT');
  assert.ok('org.opencontainers.image.source' in labels);
  const cfg = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config}}', tag));
  assert.equal(cfg.User, '1000:1000');
  assert.equal(cfg.StopSignal, 'SIGTERM');
  assert.deepEqual(cfg.Cmd, ['blitz-lb', 'run', '--config', '/etc/blitz-lb/config.toml']);
  assert.match(cfg.Healthcheck.Test.join(' '), /healthcheck\.js/);

  const a = await namedServer(t, '127.0.0.1');
  const b = await namedServer(t, '127.0.0.1');
  const lbPort = await freePort();
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-image-'));
  chmodSync(dir, 0o755); // uid 1000 in the container reads it
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.toml');
  writeFileSync(file, config(lbPort, adminPort, a.address));
  await docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--read-only',
    '-v',
    `${dir}:/etc/blitz-lb:ro`,
    tag,
  );
  await waitFor(async () => !(await refused(lbPort)), 20_000, 'the balancer listening');
  const first = await session(lbPort);
  first.client.destroy();
  assert.equal(first.backend, a.address);

  // PID 1 is node running blitz-lb, as uid 1000; no zombie in the container.
  const status = await docker('exec', name, 'cat', '/proc/1/status');
  assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
  const cmdline = await docker('exec', name, 'sh', '-c', "tr '\\0' ' ' < /proc/1/cmdline");
  assert.match(
    cmdline,
    /^node \/usr\/local\/bin\/blitz-lb run --config \/etc\/blitz-lb\/config\.toml/,
  );
  const states = await docker('exec', name, 'sh', '-c', 'cat /proc/[0-9]*/stat');
  assert.ok(!/\) Z /.test(states), 'no zombie process');
  // The HEALTHCHECK's command, run now rather than after its 30 s interval.
  assert.match(await docker('exec', name, 'node', '/app/dist/src/container/healthcheck.js'), /200/);

  // SIGHUP reloads the mounted file: b replaces a.
  writeFileSync(file, config(lbPort, adminPort, b.address));
  await docker('kill', '-s', 'HUP', name);
  await waitFor(
    async () => {
      const s = await session(lbPort);
      s.client.destroy();
      return s.backend === b.address;
    },
    10_000,
    'sessions on b after the reload',
  );

  // docker stop with a session open: the listener closes, the session goes on and ends, exit 0.
  const open = await session(lbPort);
  const began = Date.now();
  const stop = spawn('docker', ['stop', '-t', '30', name], { env, stdio: 'ignore' });
  const stopped = new Promise<number | null>((r) => stop.on('exit', r));
  await waitFor(() => refused(lbPort), 10_000, 'the listener closed after SIGTERM');
  open.client.write('still here');
  assert.equal((await readBytes(open.client, 10)).toString(), 'still here');
  open.client.end();
  assert.equal(await stopped, 0);
  const took = Date.now() - began;
  assert.ok(took < 20_000, `stopped within shutdown_timeout, not killed (${took} ms)`);
  const state = JSON.parse(await docker('inspect', '--format', '{{json .State}}', name));
  assert.equal(state.ExitCode, 0, 'exit 0 after a graceful stop');
  assert.equal(state.OOMKilled, false);
  const logs = await docker('logs', name);
  assert.match(logs, /"msg":"stopping: no new sessions, draining"/);
  assert.match(logs, /"msg":"stopped"/);
});
