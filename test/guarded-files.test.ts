import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { readGuarded } from '../src/config/guarded-file.js';
import { configJsonSchema } from '../src/config/json-schema.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { startBalancer } from './helpers/lifecycle.js';
import { makePki } from './helpers/pki.js';
import { refusedPort, waitFor } from './helpers/servers.js';

/**
 * Issue 24, item 2: every file the config names is read through one guarded
 * reader (src/config/guarded-file.ts), at start, at reload and in `check`: a
 * FIFO is never opened blocking, a device never read, a file over its limit
 * never read whole, and the error is one line naming the key and the file.
 */

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-guard-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function mkfifo(path: string): string {
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, `mkfifo: ${r.stderr}`);
  return path;
}

/**
 * Every config key that names a file or a socket path, by its place in the
 * schema (services.* and defaults.* alike). A key whose documentation speaks
 * of a file, a PEM, a path or a socket must be listed here (and then be
 * tested below with a FIFO) or in NOT_FILES with the reason: a new key
 * cannot skip the guarded reader unseen.
 */
const FILE_KEYS = [
  'process.pid_file',
  'admin.listen',
  'log.file',
  'log.syslog',
  'services.*.tls.cert',
  'services.*.tls.key',
  'services.*.tls.certificates[].cert',
  'services.*.tls.certificates[].key',
  'services.*.tls.client_ca',
  'services.*.backend_tls.ca',
  'services.*.backend_tls.cert',
  'services.*.backend_tls.key',
  'services.*.discovery.path',
  'services.*.discovery.kubeconfig',
];
const NOT_FILES: Record<string, string> = {
  log: 'the table; its file and syslog keys are listed',
  'log.destination': 'names the destinations (file and syslog among them)',
  'admin.mode': 'permission bits of the admin socket (admin.listen is the path)',
  'services.*.listen': 'host:port, or a socket passed in by systemd or fd number: never a path',
  'services.*.health.kind': 'names the probe kinds',
  'services.*.health.path': 'an HTTP request path',
  'services.*.pool.idle_ttl': 'a duration (of a pooled socket)',
  'services.*.discovery': 'the table; its path key is listed',
  'services.*.discovery.kind': 'names the kinds (file among them)',
  'services.*.discovery.interval': 'a duration (file: a re-check period)',
};

function keysSpeakingOfFiles(): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown, path: string): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    const doc = typeof n.description === 'string' ? n.description : '';
    if (path && /\bfile\b|\bPEM\b|\bpath\b|socket|unix:/i.test(doc))
      out.add(path.replace(/^defaults\./, 'services.*.'));
    for (const [k, v] of Object.entries((n.properties as object) ?? {}))
      walk(v, path ? `${path}.${k}` : k);
    if (n.additionalProperties && typeof n.additionalProperties === 'object')
      walk(n.additionalProperties, `${path}.*`);
    if (n.items) walk(n.items, `${path}[]`);
    for (const o of (n.anyOf as unknown[]) ?? []) walk(o, path);
  };
  walk(configJsonSchema(), '');
  return out;
}

test('guarded files: every config key that names a file or socket path is known, and is either guarded or says why not', () => {
  const found = [...keysSpeakingOfFiles()].sort();
  const known = [...FILE_KEYS, ...Object.keys(NOT_FILES)].sort();
  assert.deepEqual(found, known);
});

/** A base config for one key's scenario: every file good but the one under test. */
function scenario(
  key: string,
  fifo: string,
  good: { cert: string; key: string; ca: string },
  dir: string,
): { toml: string; names: RegExp } {
  const svc = '[services.web]\nlisten = "127.0.0.1:18471"\nbackends = ["127.0.0.1:9001"]\n';
  const tls = (c: string, k: string, extra = '') =>
    `${svc}[services.web.tls]\ncert = "${c}"\nkey = "${k}"\n${extra}`;
  const bt = (extra: string) => `${svc}[services.web.backend_tls]\n${extra}`;
  const pair = (c: string, k: string) =>
    `${svc}[services.web.tls]\ncertificates = [{ cert = "${good.cert}", key = "${good.key}" }, { cert = "${c}", key = "${k}" }]\n`;
  switch (key) {
    case 'process.pid_file':
      return { toml: `[process]\npid_file = "${fifo}"\n${svc}`, names: /process\.pid_file/ };
    case 'log.file':
      return { toml: `[log]\ndestination = "file"\nfile = "${fifo}"\n${svc}`, names: /log\.file/ };
    case 'log.syslog':
      return {
        toml: `[log]\ndestination = "syslog"\nsyslog = "unix:${fifo}"\n${svc}`,
        names: /log\.syslog/,
      };
    case 'admin.listen':
      return { toml: `[admin]\nlisten = "unix:${fifo}"\n${svc}`, names: /admin\.listen/ };
    case 'services.*.tls.cert':
      return { toml: tls(fifo, good.key), names: /services\.web\.tls\.cert/ };
    case 'services.*.tls.key':
      return { toml: tls(good.cert, fifo), names: /services\.web\.tls\.key/ };
    case 'services.*.tls.certificates[].cert':
      return {
        toml: pair(fifo, good.key),
        names: /services\.web\.tls\.certificates\[1\]\.cert/,
      };
    case 'services.*.tls.certificates[].key':
      return {
        toml: pair(good.cert, fifo),
        names: /services\.web\.tls\.certificates\[1\]\.key/,
      };
    case 'services.*.tls.client_ca':
      return {
        toml: tls(good.cert, good.key, `client_ca = "${fifo}"\n`),
        names: /services\.web\.tls\.client_ca/,
      };
    case 'services.*.backend_tls.ca':
      return { toml: bt(`ca = "${fifo}"\n`), names: /services\.web\.backend_tls\.ca/ };
    case 'services.*.backend_tls.cert':
      return {
        toml: bt(`cert = "${fifo}"\nkey = "${good.key}"\n`),
        names: /services\.web\.backend_tls\.cert/,
      };
    case 'services.*.backend_tls.key':
      return {
        toml: bt(`cert = "${good.cert}"\nkey = "${fifo}"\n`),
        names: /services\.web\.backend_tls\.key/,
      };
    case 'services.*.discovery.kubeconfig':
      return {
        toml: `${svc}[services.web.discovery]\nkind = "kubernetes"\nservice = "web"\nport = 80\nkubeconfig = "${fifo}"\n`,
        names: /services\.web\.discovery\.kubeconfig/,
      };
    case 'services.*.discovery.path': {
      const json = mkfifo(join(dir, 'backends.json'));
      return {
        toml: `${svc}[services.web.discovery]\nkind = "file"\npath = "${json}"\n`,
        names: /services\.web\.discovery\.path/,
      };
    }
  }
  throw new Error(`no scenario for ${key}: add one`);
}

test('guarded files: a FIFO at every listed key fails `check` at once, one line naming the key and the FIFO', (t) => {
  const pki = makePki(t);
  const good = { cert: pki.server.certFile, key: pki.server.keyFile, ca: pki.ca.certFile };
  for (const key of FILE_KEYS) {
    const dir = tempDir(t);
    const fifo = mkfifo(join(dir, 'fifo.pem'));
    const s = scenario(key, fifo, good, dir);
    const file = join(dir, 'c.toml');
    writeFileSync(file, s.toml);
    const started = Date.now();
    const r = runCli(['check', '--config', file]);
    // spawnSync's timeout (20 s) would leave status null: a hang is a failure, not a pass.
    assert.equal(r.status, 2, `${key}: check exited ${r.status}: ${r.stderr}`);
    assert.ok(Date.now() - started < 10_000, `${key}: check took ${Date.now() - started} ms`);
    const line = r.stderr.split('\n').find((l) => s.names.test(l));
    assert.ok(line, `${key}: no line names the key in ${JSON.stringify(r.stderr)}`);
    assert.ok(line.includes(dir), `${key}: the line names no file: ${line}`);
    assert.match(line, /FIFO|not a regular file|not a socket/, `${key}: ${line}`);
  }
});

test('guarded files: /dev/zero, a symlink to it, and a 2 MiB file as [tls] cert are refused by check without reading them', (t) => {
  const pki = makePki(t);
  const dir = tempDir(t);
  const link = join(dir, 'zero.pem');
  symlinkSync('/dev/zero', link);
  const big = join(dir, 'big.pem');
  writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x41));
  const cases: [string, RegExp][] = [
    ['/dev/zero', /is a character device, not a regular file/],
    [link, /is a character device, not a regular file/],
    [big, /is 2097152 bytes, over the limit of 1 MiB/],
  ];
  for (const [cert, why] of cases) {
    const file = tempConfig(
      t,
      `[services.web]\nlisten = "127.0.0.1:18472"\nbackends = ["127.0.0.1:9001"]\n[services.web.tls]\ncert = "${cert}"\nkey = "${pki.server.keyFile}"\n`,
    );
    const r = runCli(['check', '--config', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /services\.web\.tls\.cert: certificate /);
    assert.match(r.stderr, why);
  }
  // The reader itself: nothing above the limit is ever returned, whatever the kind.
  assert.throws(() => readGuarded('/dev/zero', 1024), { kind: 'not-regular' });
  assert.throws(() => readGuarded(big, 1024 * 1024), { kind: 'too-big' });
});

test('guarded files: `run` with a FIFO as [tls] cert exits 2 at start with the key and file', (t) => {
  const pki = makePki(t);
  const dir = tempDir(t);
  const fifo = mkfifo(join(dir, 'cert.pem'));
  const file = tempConfig(
    t,
    `[services.web]\nlisten = "127.0.0.1:18473"\nbackends = ["127.0.0.1:9001"]\n[services.web.tls]\ncert = "${fifo}"\nkey = "${pki.server.keyFile}"\n`,
  );
  const r = runCli(['run', '--config', file]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /services\.web\.tls\.cert: certificate .*cert\.pem: cannot read it: is a FIFO \(named pipe\), not a regular file/,
  );
});

test('guarded files: a FIFO put in place of the [tls] cert before SIGHUP: the reload fails naming it, /livez keeps answering, the old certificate stays', async (t) => {
  const pki = makePki(t);
  const dir = tempDir(t);
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  copyFileSync(pki.server.certFile, cert);
  copyFileSync(pki.server.keyFile, key);
  const backend = await refusedPort();
  const lb = await startBalancer(
    t,
    (port, admin) =>
      `[admin]\nlisten = "127.0.0.1:${admin}"\n[services.web]\nlisten = "127.0.0.1:${port}"\nbackends = ["127.0.0.1:${backend}"]\n[services.web.health]\nkind = "none"\n[services.web.tls]\ncert = "${cert}"\nkey = "${key}"\n`,
  );
  rmSync(cert);
  mkfifo(cert);
  lb.proc.kill('SIGHUP');
  await waitFor(
    () => lb.stdout().includes('services.web.tls.cert: certificate'),
    10_000,
    'the reload error',
  );
  const line = lb
    .stdout()
    .split('\n')
    .find((l) => l.includes('services.web.tls.cert'));
  assert.match(String(line), /cert\.pem: cannot read it: is a FIFO \(named pipe\)/);
  assert.match(String(line), /the previous certificates stay in force/);
  // The event loop was never blocked: the admin server answers at once.
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`http://127.0.0.1:${lb.adminPort}/livez`, {
      signal: AbortSignal.timeout(2000),
    });
    assert.equal(res.status, 200);
  }
  assert.equal(lb.proc.exitCode, null);
});

test('guarded files: a reload that gives a service a FIFO as [tls] cert fails at once, naming the key and the file; the old config keeps running', async (t) => {
  const pki = makePki(t);
  const dir = tempDir(t);
  const fifo = mkfifo(join(dir, 'cert.pem'));
  const raw = (tls: Record<string, unknown> | null) => ({
    log: { level: 'silent' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        backends: ['127.0.0.1:9001'],
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        ...(tls ? { tls } : {}),
      },
      ...(tls ? { added: { listen: '127.0.0.1:0', backends: ['127.0.0.1:9001'], tls } } : {}),
    },
  });
  const lb = new LoadBalancer(parseConfig(raw(null), { allowEphemeralListen: true }));
  await lb.start();
  t.after(() => lb.close(0));
  const next = parseConfig(raw({ cert: fifo, key: pki.server.keyFile }), {
    allowEphemeralListen: true,
  });
  const started = Date.now();
  await assert.rejects(lb.reload(next), (err: Error) => {
    assert.match(
      err.message,
      /^services\.(web|added)\.tls\.cert: certificate .*cert\.pem: cannot read it: is a FIFO \(named pipe\), not a regular file$/,
    );
    return true;
  });
  assert.ok(Date.now() - started < 2000);
  assert.deepEqual(
    lb.allServices.map((s) => s.name),
    ['web'],
  );
});
