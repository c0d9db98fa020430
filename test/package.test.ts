import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { echoServer, openClient, readAll, refusedPort, waitFor } from './helpers/servers.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** What a fresh clone has that the build and the package need (no dist/, no tests). */
const CLONE = [
  'package.json',
  'tsconfig.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'config.toml',
  'src',
  'examples',
];

interface Packed {
  filename: string;
  files: { path: string }[];
}

/**
 * Packs a copy of the sources without dist/ (prepack must build it), then
 * installs the tarball into an empty project. Offline: the package's
 * dependencies are linked from this checkout's node_modules (installed by
 * npm ci), so nothing is fetched and nothing is taken from a cache.
 */
test('npm pack builds dist from a fresh copy, ships only what runs, and the installed package runs --version, check and run', {
  timeout: 120_000,
}, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'blitz-lb-pack-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const clone = join(work, 'clone');
  mkdirSync(clone);
  for (const f of CLONE) cpSync(join(REPO, f), join(clone, f), { recursive: true });
  const modules = realpathSync(join(REPO, 'node_modules'));
  symlinkSync(modules, join(clone, 'node_modules'));
  const out = join(work, 'out');
  mkdirSync(out);
  const pack = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: clone });
  const packed = (JSON.parse(pack.stdout) as Packed[])[0] as Packed;
  const files = packed.files.map((f) => f.path);
  for (const f of [
    'dist/src/cli.js',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'LICENSE',
    'CHANGELOG.md',
    'README.md',
    'config.toml',
    'examples/blitz-lb.service',
    'examples/blitz-lb.socket',
  ])
    assert.ok(files.includes(f), `the package has ${f}`);
  const stray = files.filter(
    (f) =>
      !/^(dist\/src\/.*\.(js|d\.ts)|[A-Z]+\.md|LICENSE|package\.json|config\.toml|examples\/blitz-lb\.(service|socket))$/.test(
        f,
      ),
  );
  assert.deepEqual(stray, [], 'nothing but the runtime, its types, docs and examples');

  const app = join(work, 'app');
  mkdirSync(app);
  const version = (
    JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
  ).version;
  const deps = (
    JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    }
  ).dependencies;
  const links = Object.fromEntries(Object.keys(deps).map((d) => [d, `file:${join(modules, d)}`]));
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'app',
      version: '1.0.0',
      private: true,
      dependencies: { 'blitz-lb': `file:${join(out, packed.filename)}`, ...links },
    }),
  );
  // --ignore-scripts: the linked dependencies are this checkout's, never to be built again.
  await run('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: app,
  });

  // The installed bin runs on the `node` first on PATH (its #!/usr/bin/env node): this test's.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
  const npx = (args: string[]) =>
    run('npx', ['--no', '--', 'blitz-lb', ...args], { cwd: app, env });
  assert.equal((await npx(['--version'])).stdout.trim(), version);
  const be = await echoServer(t);
  const port = await refusedPort();
  writeFileSync(
    join(app, 'lb.toml'),
    `[services.web]\nlisten = "127.0.0.1:${port}"\nbackends = ["127.0.0.1:${be}"]\n[services.web.health]\nkind = "none"\n`,
  );
  assert.match((await npx(['check', '--config', 'lb.toml'])).stdout, /lb\.toml: valid/);

  // The public API only: deep imports are refused by the exports map.
  const imp = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const m = await import('blitz-lb'); console.log(typeof m.LoadBalancer); await import('blitz-lb/dist/src/cli.js').catch((e) => console.log(e.code));",
    ],
    { cwd: app },
  );
  assert.equal(imp.stdout, 'function\nERR_PACKAGE_PATH_NOT_EXPORTED\n');

  // A short run: through npx here, in its own process group, which SIGTERM reaches whole.
  const lb = spawn('npx', ['--no', '--', 'blitz-lb', 'run', '--config', 'lb.toml'], {
    cwd: app,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  lb.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((r) => lb.once('exit', (c) => r(c)));
  t.after(() => {
    try {
      process.kill(-(lb.pid as number), 'SIGKILL');
    } catch {}
  });
  await waitFor(
    () => log.includes('"blitz-lb started"'),
    20_000,
    'the installed balancer to start',
  );
  const c = await openClient(port);
  c.end('hello');
  assert.equal((await readAll(c)).toString(), 'hello');
  process.kill(-(lb.pid as number), 'SIGTERM');
  await exited;
  await waitFor(() => log.includes('"msg":"stopped"'), 10_000, 'a clean stop');
});
