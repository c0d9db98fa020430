import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config/schema.js';
import type { ConfigError } from '../src/errors.js';
import { CLI } from './helpers/cli.js';
import { refusedPort, waitFor } from './helpers/servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EX = join(root, 'examples', 'migrating');
const DOC = join(root, 'docs', 'migrating.md');
const has = (cmd: string, args: string[]) => spawnSync(cmd, args).status === 0;
const hasHaproxy = has('haproxy', ['-v']);
const hasNginx =
  has('nginx', ['-v']) &&
  spawnSync('test', ['-e', '/usr/lib/nginx/modules/ngx_stream_module.so']).status === 0;

/** A backend that answers each line it reads with its name: client-first, as most protocols are. */
async function namedServer(
  t: TestContext,
  name: string,
): Promise<{ port: number; server: Server; conns: Set<Socket> }> {
  const conns = new Set<Socket>();
  const server = createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    s.on('data', () => s.write(`${name}\n`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const c of conns) c.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, server, conns };
}

function stop(b: { server: Server; conns: Set<Socket> }): void {
  b.server.close();
  for (const c of b.conns) c.destroy();
}

/** Connects, asks who answers, and keeps the connection (closed after the test) or closes it. */
async function who(port: number, keep?: TestContext): Promise<string> {
  const c = connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  let got = '';
  c.on('data', (d: Buffer) => {
    got += d.toString();
  });
  await once(c, 'connect');
  c.write('who\n');
  await waitFor(() => got.includes('\n') || c.destroyed, 5000, `an answer on ${port}`);
  if (keep) keep.after(() => c.destroy());
  else c.destroy();
  return got.trim();
}

/** Asks until `name` answers (the proxy may refuse or reset while it finds out backends are gone). */
async function untilAnswer(port: number, name: string): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      last = await who(port).catch(() => '');
      return last === name;
    },
    30_000,
    `${name} to answer (last: "${last}")`,
  );
}

/** The example file with its listen port and backend addresses moved to loopback ports of this test. */
function localise(text: string, map: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(map)) out = out.replaceAll(from, to);
  return out;
}

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-migrate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

function started(t: TestContext, cmd: string, args: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.on('exit', (code) => {
    if (code) process.stderr.write(`${cmd} exited ${code}: ${err}\n`);
  });
  // SIGTERM: nginx's master then stops its worker (a SIGKILL would orphan it, holding our stderr pipe).
  t.after(async () => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = once(p, 'exit');
    p.kill('SIGTERM');
    const late = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(late);
  });
  return p;
}

async function listening(port: number): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const c = connect({ port, host: '127.0.0.1' });
        c.on('connect', () => {
          c.destroy();
          resolve(true);
        });
        c.on('error', () => resolve(false));
      }),
    15_000,
    `a listener on ${port}`,
  );
}

/** Runs one proxy (the original or the conversion) through the HAProxy example's behaviour. */
async function haproxyBehaviour(
  t: TestContext,
  run: (map: Record<string, string>) => Promise<number>,
): Promise<void> {
  const app1 = await namedServer(t, 'app1');
  const app2 = await namedServer(t, 'app2');
  const spare = await namedServer(t, 'spare');
  const port = await refusedPort();
  const lb = await run({
    '127.0.0.1:8401': `127.0.0.1:${port}`,
    '10.0.0.11:8080': `127.0.0.1:${app1.port}`,
    '10.0.0.12:8080': `127.0.0.1:${app2.port}`,
    '10.0.0.13:8080': `127.0.0.1:${spare.port}`,
  });
  await listening(lb);
  // Until both primaries have answered once (haproxy may take a first check to count one in).
  const seen = new Set<string>();
  await waitFor(
    async () => {
      seen.add(await who(port));
      return seen.has('app1') && seen.has('app2');
    },
    15_000,
    'both primaries to answer',
  );
  // balance roundrobin, equal weights: then the two primaries in turn; the backup never.
  const next = [await who(port), await who(port), await who(port), await who(port)];
  assert.deepEqual([...next].sort(), ['app1', 'app1', 'app2', 'app2'], next.join(' '));
  assert.notEqual(next[0], next[1]);
  assert.notEqual(next[1], next[2]);
  assert.ok(!seen.has('spare'), 'the backup is not used while a primary is up');
  // Both primaries go: the backup takes over once checks (inter 1s, fall 2) see it.
  stop(app1);
  stop(app2);
  await untilAnswer(port, 'spare');
}

test('docs/migrating.md shows each worked example exactly as the suite runs it', () => {
  const doc = readFileSync(DOC, 'utf8');
  for (const f of ['haproxy.cfg', 'haproxy.toml', 'nginx.conf', 'nginx.toml']) {
    const text = readFileSync(join(EX, f), 'utf8').trimEnd();
    assert.ok(doc.includes(text), `docs/migrating.md has examples/migrating/${f} verbatim`);
  }
});

test('HAProxy worked example: the converted config balances in turn and fails over to the backup', async (t) => {
  await haproxyBehaviour(t, async (map) => {
    const file = tempFile(
      t,
      'haproxy.toml',
      localise(readFileSync(join(EX, 'haproxy.toml'), 'utf8'), map),
    );
    started(t, process.execPath, [CLI, 'run', '--config', file, '--log-level', 'silent']);
    return Number((map['127.0.0.1:8401'] as string).split(':')[1]);
  });
});

test('HAProxy worked example: the original, run by haproxy, does the same', {
  skip: !hasHaproxy && 'haproxy is not installed (.ci/run installs it)',
}, async (t) => {
  await haproxyBehaviour(t, async (map) => {
    const file = tempFile(
      t,
      'haproxy.cfg',
      localise(readFileSync(join(EX, 'haproxy.cfg'), 'utf8'), map),
    );
    started(t, 'haproxy', ['-db', '-f', file]);
    return Number((map['127.0.0.1:8401'] as string).split(':')[1]);
  });
});

/** The nginx example's behaviour: least connections (a held session sends the next client elsewhere), then the backup. */
async function nginxBehaviour(
  t: TestContext,
  run: (map: Record<string, string>) => Promise<void>,
): Promise<void> {
  const db1 = await namedServer(t, 'db1');
  const db2 = await namedServer(t, 'db2');
  const db3 = await namedServer(t, 'db3');
  const port = await refusedPort();
  await run({
    '127.0.0.1:8402': `127.0.0.1:${port}`,
    '10.0.0.21:5432': `127.0.0.1:${db1.port}`,
    '10.0.0.22:5432': `127.0.0.1:${db2.port}`,
    '10.0.0.23:5432': `127.0.0.1:${db3.port}`,
  });
  await listening(port);
  const held = await who(port, t);
  assert.ok(held === 'db1' || held === 'db2', held);
  // The held session makes its backend the busier one: the next two go to the other.
  const other = held === 'db1' ? 'db2' : 'db1';
  assert.equal(await who(port, t), other);
  const third = await who(port);
  assert.ok(third === 'db1' || third === 'db2', third);
  // Both primaries go: the backup serves.
  stop(db1);
  stop(db2);
  await untilAnswer(port, 'db3');
}

test('nginx worked example: the converted config picks the least busy backend and falls back to the backup', async (t) => {
  await nginxBehaviour(t, async (map) => {
    const file = tempFile(
      t,
      'nginx.toml',
      localise(readFileSync(join(EX, 'nginx.toml'), 'utf8'), map),
    );
    started(t, process.execPath, [CLI, 'run', '--config', file, '--log-level', 'silent']);
  });
});

test('nginx worked example: the original, run by nginx, does the same', {
  skip: !hasNginx && 'nginx with its stream module is not installed (.ci/run installs it)',
}, async (t) => {
  await nginxBehaviour(t, async (map) => {
    const file = tempFile(
      t,
      'nginx.conf',
      localise(readFileSync(join(EX, 'nginx.conf'), 'utf8'), map),
    );
    const dir = dirname(file);
    started(t, 'nginx', [
      '-p',
      dir,
      '-c',
      file,
      '-e',
      'stderr',
      '-g',
      `daemon off; pid ${dir}/nginx.pid;`,
    ]);
  });
});

/** What `check` says of a foreign word: the whole message for `key = value` in [services.web] (or its health table). */
function said(line: string, table = ''): string {
  const raw: Record<string, unknown> = {
    services: { web: { listen: '127.0.0.1:8080', backends: ['127.0.0.1:9001'] } },
  };
  const web = (raw.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  const [k, v] = line.split(' = ') as [string, string];
  if (table) web[table] = {};
  const target = (table ? web[table] : web) as Record<string, unknown>;
  target[k.replace(/^"(.*)"$/, '$1')] = JSON.parse(v);
  try {
    parseConfig(raw);
  } catch (err) {
    return (err as ConfigError).problems.join('\n');
  }
  return '';
}

test("check names the key or value meant when HAProxy's or nginx's word is written", () => {
  const keys: [string, RegExp, string?][] = [
    [
      'maxconn = 100',
      /maxconn: unknown key; "maxconn" is HAProxy's word: here write max_connections/,
    ],
    ['timeout_client = "30s"', /"timeout_client" is HAProxy's word: here write client_timeout/],
    ['"timeout connect" = "2s"', /"timeout connect" is HAProxy's word: here write connect_timeout/],
    ['inter = "2s"', /"inter" is HAProxy's word: here write health\.interval/],
    [
      'inter = "2s"',
      /health\.inter: unknown key; "inter" is HAProxy's word: here write health\.interval/,
      'health',
    ],
    ['fall = 3', /"fall" is HAProxy's word: here write health\.fall/],
    ['rise = 2', /"rise" is HAProxy's word: here write health\.rise/],
    ['server = "10.0.0.1:80"', /"server" is HAProxy and nginx's word: here write backends = /],
    ['bind = ":80"', /"bind" is HAProxy's word: here write listen = "host:port"/],
    ['proxy_timeout = "10m"', /"proxy_timeout" is nginx's word: here write idle_timeout/],
    ['"timeout tunnel" = "1h"', /"timeout tunnel" is HAProxy's word: here write tunnel_timeout/],
    [
      'proxy_download_rate = "1m"',
      /"proxy_download_rate" is nginx's word: here write download_rate/,
    ],
    [
      'proxy_connect_timeout = "2s"',
      /"proxy_connect_timeout" is nginx's word: here write connect_timeout/,
    ],
    ['least_conn = true', /"least_conn" is nginx's word: here write balance = "least-connections"/],
    ['max_fails = 3', /"max_fails" is nginx's word: here write health\.fall/],
    ['fail_timeout = "10s"', /"fail_timeout" is nginx's word: here write health\.interval/],
    ['limit_conn = 10', /"limit_conn" is nginx's word: here write max_connections_per_source/],
    ['ssl_preread = true', /"ssl_preread" is nginx's word: here write sni = /],
    ['send-proxy = true', /"send-proxy" is HAProxy's word: here write send_proxy = "v1"/],
    ['stick_table = "type ip"', /"stick_table" is HAProxy's word: .*\[services\.NAME\.stick\]/],
    ['slowstart = "30s"', /"slowstart" is HAProxy's word: here write slow_start/],
    ['retries = 3', /"retries" is HAProxy's word: here write max_retries/],
  ];
  for (const [line, want, table] of keys) assert.match(said(line, table), want, line);
  const values: [string, RegExp, string?][] = [
    [
      'balance = "leastconn"',
      /got "leastconn"; "leastconn" is HAProxy's word: here write balance = "least-connections"/,
    ],
    [
      'balance = "roundrobin"',
      /"roundrobin" is HAProxy's word: here write balance = "round-robin"/,
    ],
    [
      'balance = "least_conn"',
      /"least_conn" is nginx's word: here write balance = "least-connections"/,
    ],
    ['balance = "source"', /"source" is HAProxy's word: here write balance = "ip-hash"/],
    ['balance = "hash"', /"hash" is nginx's word: here write balance = "ip-hash"/],
    ['balance = "random"', /here write balance = "random-two"/],
    ['kind = "httpchk"', /"httpchk" is HAProxy's word: here write kind = "http"/, 'health'],
    ['send_proxy = "send-proxy-v2"', /here write send_proxy = "v2"/],
  ];
  for (const [line, want, table] of values) assert.match(said(line, table), want, line);
  // A plain typo still gets the closest key.
  assert.match(said('max_conections = 5'), /did you mean "max_connections"\?/);
});
