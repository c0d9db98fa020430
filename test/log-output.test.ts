import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { startBalancer, upgradeConfig } from './helpers/lifecycle.js';
import { echoServer, openClient, readAll, waitFor } from './helpers/servers.js';

/** One short session through the balancer: sends `text`, reads the echo. */
async function session(port: number, text: string): Promise<void> {
  const c = await openClient(port);
  c.end(text);
  assert.equal((await readAll(c)).toString(), text);
}

/** A [log] table added to the usual one-service config. */
function withLog(be: number, log: string): (port: number, admin: number) => string {
  const base = upgradeConfig(be);
  return (port, admin) => `[log]\naccess = true\n${log}\n${base(port, admin)}`;
}

const RFC5424 =
  /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (\S+) blitz-lb (\d+) (\S+) - (\{.*\})$/;

function parse5424(m: string): {
  pri: number;
  host: string;
  procid: number;
  msgid: string;
  json: Record<string, unknown>;
} {
  const r = RFC5424.exec(m);
  assert.ok(r, `RFC 5424: ${m}`);
  return {
    pri: Number(r[1]),
    host: r[3] as string,
    procid: Number(r[4]),
    msgid: r[5] as string,
    json: JSON.parse(r[6] as string) as Record<string, unknown>,
  };
}

test('log file: lines go to the file, not stdout; after mv and SIGUSR1 the old file keeps its lines and a new one takes the rest', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(
    t,
    withLog(be, 'destination = "file"\nfile = "lb.log"'),
    {},
    'file',
  );
  const file = join(dirname(lb.file), 'lb.log');
  await session(lb.port, 'before');
  const lines = (f: string) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => lines(file).some((l) => l.log === 'access'), 10_000, 'the access line');
  assert.equal(lb.stdout(), '', 'nothing on stdout');
  renameSync(file, `${file}.1`);
  lb.proc.kill('SIGUSR1');
  await waitFor(() => existsSync(file), 10_000, 'the reopened file');
  await session(lb.port, 'after');
  await waitFor(
    () => lines(file).filter((l) => l.log === 'access').length === 1,
    10_000,
    'the second access line in the new file',
  );
  const old = lines(`${file}.1`);
  assert.equal(old.filter((l) => l.log === 'access').length, 1, 'the rotated file kept its line');
  assert.ok(old.some((l) => l.msg === 'blitz-lb started'));
  assert.ok(lines(file).some((l) => l.msg === 'SIGUSR1: log reopened'));
  lb.proc.kill('SIGTERM');
  assert.equal(await lb.exited, 0);
});

test('log to stderr, levels as names and a hostname in every line', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(
    t,
    withLog(be, 'destination = "stderr"\nformat = "json"\nhostname = "lb-7.test"'),
    {},
    'stderr',
  );
  await session(lb.port, 'x');
  const lines = () =>
    lb
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => lines().some((l) => l.log === 'access'), 10_000, 'the access line');
  assert.equal(lb.stdout(), '');
  for (const l of lines()) {
    assert.equal(typeof l.level, 'string', JSON.stringify(l));
    assert.equal(l.hostname, 'lb-7.test');
  }
  assert.equal(lines().find((l) => l.msg === 'blitz-lb started')?.level, 'info');
});

test('syslog over UDP: RFC 5424 with the facility and severity, the hostname, the PID, MSGID "access" for access lines', async (t) => {
  const rx = createSocket('udp4');
  const got: string[] = [];
  rx.on('message', (m) => got.push(m.toString()));
  rx.bind(0, '127.0.0.1');
  await once(rx, 'listening');
  t.after(() => rx.close());
  const be = await echoServer(t);
  const lb = await startBalancer(
    t,
    withLog(
      be,
      `destination = "syslog"\nsyslog = "udp://127.0.0.1:${rx.address().port}"\nfacility = "local3"\nhostname = "lb-udp"`,
    ),
    {},
    'syslog',
  );
  await session(lb.port, 'x');
  await waitFor(() => got.some((m) => m.includes('"log":"access"')), 10_000, 'the access line');
  const started = got.map(parse5424).find((m) => m.json.msg === 'blitz-lb started');
  assert.ok(started);
  assert.equal(started.pri, 19 * 8 + 6, 'local3.info');
  assert.equal(started.host, 'lb-udp');
  assert.equal(started.procid, lb.proc.pid);
  assert.equal(started.msgid, '-');
  const access = got.map(parse5424).find((m) => m.json.log === 'access');
  assert.equal(access?.msgid, 'access');
  assert.equal(lb.stdout(), '');
});

test('syslog over TCP: octet-counted frames, and lines written while the server is away arrive once it is back', async (t) => {
  const frames: string[] = [];
  const conns: Socket[] = [];
  const server = createServer((s) => {
    conns.push(s);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      for (;;) {
        const sp = buf.indexOf(' ');
        if (sp < 0) break;
        const len = Number(buf.slice(0, sp));
        assert.ok(Number.isInteger(len) && len > 0, `a frame length: ${buf.slice(0, 20)}`);
        if (Buffer.byteLength(buf) < sp + 1 + len) break;
        const rest = Buffer.from(buf.slice(sp + 1));
        frames.push(rest.subarray(0, len).toString());
        buf = rest.subarray(len).toString();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  t.after(() => {
    for (const c of conns) c.destroy();
    server.close();
  });
  const be = await echoServer(t);
  const lb = await startBalancer(
    t,
    withLog(be, `destination = "syslog"\nsyslog = "tcp://127.0.0.1:${port}"`),
    {},
    'syslog',
  );
  await waitFor(() => frames.some((f) => f.includes('blitz-lb started')), 10_000, 'started');
  for (const f of frames) parse5424(f);
  // The server goes away: the balancer keeps serving, and the lines wait.
  server.close();
  for (const c of conns) c.destroy();
  await session(lb.port, 'while-away');
  const before = frames.length;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  await waitFor(
    () => frames.slice(before).some((f) => parse5424(f).json.log === 'access'),
    15_000,
    'the access line written while the server was away',
  );
});

test('syslog to a Unix datagram socket (as /dev/log): RFC 5424 lines with the severity of each', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-syslog-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'log');
  const py = spawn(
    'python3',
    [
      '-c',
      'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("listening",flush=True)\nwhile True:\n  print(s.recv(70000).decode().replace("\\n"," "),flush=True)',
      path,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => py.kill('SIGKILL'));
  let out = '';
  py.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await waitFor(() => out.startsWith('listening\n'), 10_000, 'the datagram socket');
  const got = () =>
    out
      .split('\n')
      .slice(1)
      .filter((l) => l !== '');
  const be = await echoServer(t);
  const lb = await startBalancer(
    t,
    withLog(be, `destination = "syslog"\nsyslog = "unix:${path}"\nfacility = "local7"`),
    {},
    'syslog',
  );
  await session(lb.port, 'x');
  await waitFor(() => got().some((m) => m.includes('"log":"access"')), 10_000, 'the access line');
  const started = got()
    .map(parse5424)
    .find((m) => m.json.msg === 'blitz-lb started');
  assert.ok(started);
  assert.equal(started.pri, 23 * 8 + 6, 'local7.info');
  assert.equal(
    started.procid,
    lb.proc.pid,
    'PROCID is the balancer, not the logger that carried it',
  );
  // A warning is a warning there too: a reload that cannot change the destination says so.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    lb.file,
    readFileSync(lb.file, 'utf8').replace('facility = "local7"', 'facility = "local6"'),
  );
  lb.proc.kill('SIGHUP');
  await waitFor(
    () => got().some((m) => m.includes('[log] facility changes take effect at the next restart')),
    10_000,
    'the warning',
  );
  const warn = got()
    .map(parse5424)
    .find((m) => String(m.json.msg).includes('[log] facility'));
  assert.equal(warn?.pri, 23 * 8 + 4, 'local7.warning');
});
