/**
 * The runtime smoke CI runs on the oldest supported Node (22.12+) and on one
 * too old (.ci/run installs both from the npm registry into temp prefixes):
 *
 *   node dist/bench/runtime-smoke.js --node /tmp/n22/node_modules/.bin/node \
 *     [--old /tmp/n20/node_modules/.bin/node]
 *
 * With --node, for workers = 1 and 2: `check`, `run`, one session through,
 * SIGHUP reload (a second backend; a session reaches it), SIGTERM stop (exit 0).
 * With --old: `blitz-lb` exits 1 with one line naming the version needed and
 * found. This process (the repo's Node 24) runs the backends and the clients;
 * only the balancer runs on the Node under test. Exits 1 on the first failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const STEP_MS = 20_000;

/** A backend that answers each connection with its name and closes. */
async function namedBackend(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.end(name);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** One session through the balancer: the backend's name it was spliced to. */
async function session(port: number): Promise<string> {
  const c = connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  await Promise.race([
    once(c, 'end'),
    new Promise((_, reject) => setTimeout(() => reject(new Error('session timed out')), STEP_MS)),
  ]);
  c.destroy();
  return Buffer.concat(chunks).toString();
}

function toml(port: number, backends: number[], workers: number): string {
  return `[process]
workers = ${workers}
shutdown_timeout = "2s"

[services.web]
listen = "127.0.0.1:${port}"
backends = [${backends.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
health = { kind = "tcp", interval = "200ms" }
`;
}

/** Resolves when `pred` holds on the balancer's stdout so far; rejects at STEP_MS. */
function waitLog(
  proc: ChildProcess,
  out: () => string,
  pred: (log: string) => boolean,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.stdout?.removeListener('data', check);
      reject(new Error(`timed out waiting for ${what}; log:\n${out()}`));
    }, STEP_MS);
    const check = (): void => {
      if (!pred(out())) return;
      clearTimeout(timer);
      proc.stdout?.removeListener('data', check);
      resolve();
    };
    proc.stdout?.on('data', check);
    check();
  });
}

async function smoke(node: string, workers: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-smoke-'));
  const a = await namedBackend('a');
  const b = await namedBackend('b');
  try {
    const port = await freePort();
    const file = join(dir, 'lb.toml');
    writeFileSync(file, toml(port, [a.port], workers));
    const checked = spawnSync(node, [CLI, 'check', '--config', file], { encoding: 'utf8' });
    if (checked.status !== 0) throw new Error(`check exited ${checked.status}: ${checked.stderr}`);
    const lb = spawn(node, [CLI, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let err = '';
    lb.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    lb.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => lb.once('exit', (code) => r(code)));
    try {
      await waitLog(
        lb,
        () => log + err,
        (l) => l.includes('"blitz-lb started"'),
        'the start',
      );
      const first = await session(port);
      if (first !== 'a') throw new Error(`the first session got "${first}", not "a"`);
      writeFileSync(file, toml(port, [a.port, b.port], workers));
      lb.kill('SIGHUP');
      // The primary and each worker log the reload (one process with workers = 1).
      const reloads = workers > 1 ? workers + 1 : 1;
      await waitLog(
        lb,
        () => log,
        (l) => l.split('"config reloaded"').length - 1 >= reloads,
        'the reload',
      );
      const seen = new Set<string>();
      for (let i = 0; i < 8 && !seen.has('b'); i++) seen.add(await session(port));
      if (!seen.has('b')) throw new Error(`after the reload no session reached b (${[...seen]})`);
      lb.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('timeout'), STEP_MS)),
      ]);
      if (code !== 0) throw new Error(`SIGTERM: exit ${code}; stderr:\n${err}`);
      if (/DeprecationWarning|ExperimentalWarning/.test(err))
        throw new Error(`warnings on stderr:\n${err}`);
    } finally {
      if (lb.exitCode === null) lb.kill('SIGKILL');
    }
  } finally {
    a.server.close();
    b.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `blitz-lb` on a Node too old: exit 1 and one line naming the version needed and found. */
function tooOld(node: string): void {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const r = spawnSync(node, [CLI, '--version'], { encoding: 'utf8' });
  const lines = r.stderr.trimEnd().split('\n');
  const want = `needs Node.js 22.12.0 or later; this is Node.js ${version.replace(/^v/, '')}`;
  if (r.status !== 1 || lines.length !== 1 || !lines[0]?.includes(want) || r.stdout !== '')
    throw new Error(`on ${version}: exit ${r.status}, stderr ${JSON.stringify(r.stderr)}`);
  process.stdout.write(`${version}: refused with exit 1: ${lines[0]}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { node: { type: 'string' }, old: { type: 'string' } } });
  if (!values.node && !values.old) throw new Error('usage: runtime-smoke --node NODE [--old NODE]');
  if (values.old) tooOld(values.old);
  if (values.node) {
    const version = spawnSync(values.node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    for (const workers of [1, 2]) {
      await smoke(values.node, workers);
      process.stdout.write(
        `${version}, workers = ${workers}: check, run, a session, SIGHUP reload, SIGTERM: ok\n`,
      );
    }
  }
}

main().catch((err: Error) => {
  process.stderr.write(`runtime smoke failed: ${err.message}\n`);
  process.exit(1);
});
