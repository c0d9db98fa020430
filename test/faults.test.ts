import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { CLI, tempConfig } from './helpers/cli.js';
import { closeAfterAccept, closeWaitCount, faultProxy, fdsOf, rssOf } from './helpers/faults.js';
import {
  addr,
  blackhole,
  echoServer,
  fdCount,
  httpGet,
  httpServer,
  openClient,
  readAll,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
  waitForSteady,
} from './helpers/servers.js';

/** Runs the CLI on a config in a child process, optionally under `ulimit -n`; resolves when it listens. */
async function childLb(t: Parameters<typeof startLb>[0], toml: string, ulimit?: number) {
  const file = tempConfig(t, toml);
  const cmd = `${ulimit ? `ulimit -n ${ulimit} && ` : ''}exec "${process.execPath}" "${CLI}" run --config "${file}"`;
  const proc = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  await waitFor(() => out.includes('blitz-lb started'), 10_000, `child start: ${out}`);
  return { pid: proc.pid as number, out: () => out, proc };
}

function childToml(listen: number, backends: number[], extra = ''): string {
  return `[log]\nlevel = "info"\n[services.web]\nlisten = "127.0.0.1:${listen}"\nbackends = [${backends.map((p) => `"127.0.0.1:${p}"`).join(', ')}]\n${extra}\n[services.web.health]\nkind = "none"\n[services.web.pool]\nmin_idle = 0\n`;
}

test('fault: a backend that resets mid-stream closes the client within 1 s; the next client is served', async (t) => {
  const be = await scriptedServer(t, (s) => {
    s.write(Buffer.alloc(16 * 1024, 1));
    setTimeout(() => s.write(Buffer.alloc(64 * 1024, 1)), 50);
  });
  const faulty = await faultProxy(t, be, { kind: 'reset_peer', afterBytes: 20_000 });
  const good = await httpServer(t, 'good');
  const port = await refusedPort();
  const lb = await childLb(t, childToml(port, [faulty, good]));
  const fd0 = fdsOf(lb.pid);
  const c = await openClient(port);
  const start = Date.now();
  c.resume();
  const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
  assert.ok(Date.now() - start < 1000);
  // The next clients are served (round-robin goes on to the good backend).
  const bodies = new Set([
    await httpGet(port).catch(() => 'reset'),
    await httpGet(port).catch(() => 'reset'),
  ]);
  assert.ok(bodies.has('good'));
  await waitFor(() => fdsOf(lb.pid) <= fd0, 3000, 'balancer descriptors back to baseline');
  assert.equal(lb.proc.exitCode, null, 'no crash');
});

test('fault: a client that vanishes (RST) mid-stream: the backend socket is destroyed, nothing left in CLOSE_WAIT', async (t) => {
  let backendSock: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backendSock = s;
    s.write(Buffer.alloc(1024 * 1024, 2));
    s.resume();
  });
  const port = await refusedPort();
  const lb = await childLb(t, childToml(port, [be]));
  const fd0 = fdsOf(lb.pid);
  const c = await openClient(port);
  await readBytes(c, 1000);
  const closed = new Promise((r) => (backendSock as Socket).once('close', r));
  c.resetAndDestroy();
  await closed;
  await waitFor(() => closeWaitCount([port, be]) === 0, 2000, 'no CLOSE_WAIT');
  await waitFor(() => fdsOf(lb.pid) <= fd0, 3000, 'balancer descriptors back to baseline');
  assert.equal(lb.proc.exitCode, null, 'no crash');
});

/** Streams `total` bytes of a seeded pattern with backpressure; resolves with its SHA-256. */
async function sendPattern(s: Socket, total: number): Promise<string> {
  const h = createHash('sha256');
  const block = randomBytes(1 << 20);
  let left = total;
  while (left > 0) {
    const n = Math.min(left, block.length);
    const chunk = n === block.length ? block : block.subarray(0, n);
    h.update(chunk);
    left -= n;
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  return h.digest('hex');
}

function hashReader(s: Socket): { done: Promise<{ hash: string; bytes: number }> } {
  const h = createHash('sha256');
  let bytes = 0;
  s.on('data', (d: Buffer) => {
    h.update(d);
    bytes += d.length;
  });
  return { done: once(s, 'end').then(() => ({ hash: h.digest('hex'), bytes })) };
}

for (const direction of ['client-to-backend', 'backend-to-client'] as const) {
  test(`fault: backpressure ${direction}: a reader that stops until backpressure holds the sender; balancer RSS grows < 32 MiB meanwhile, < 128 MiB in all; SHA-256 matches`, async (t) => {
    const total = 256 * 1024 * 1024;
    let backendSide: Socket | undefined;
    const be = await scriptedServer(t, (s) => {
      backendSide = s;
    });
    const lbPort = await refusedPort();
    const lb = await childLb(t, childToml(lbPort, [be]));
    const rss0 = rssOf(lb.pid);
    const fd0 = fdsOf(lb.pid);
    const c = await openClient(lbPort);
    await waitFor(() => backendSide !== undefined, 3000, 'backend accept');
    const b = backendSide as Socket;
    const [sender, reader] = direction === 'client-to-backend' ? [c, b] : [b, c];
    reader.pause();
    const sent = sendPattern(sender, total);
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(lb.pid));
    }, 100);
    // Until the sender is held: every buffer between it and the stopped reader is full.
    await waitForSteady(() => sender.bytesWritten, 1000, 30_000, 'the sender held by backpressure');
    // While the reader is stopped, backpressure alone holds the balancer's memory down.
    const stalled = peak;
    const got = hashReader(reader);
    reader.resume();
    const [want, recv] = await Promise.all([sent, got.done]);
    clearInterval(sampler);
    assert.equal(recv.bytes, total);
    assert.equal(recv.hash, want);
    assert.ok(
      stalled - rss0 < 32 * 1024 * 1024,
      `RSS grew ${((stalled - rss0) / 2 ** 20).toFixed(1)} MiB while the reader was stopped`,
    );
    // Once it reads, 256 MiB flow through in 64 KiB Buffers that die at once; Node 24's V8
    // collects them later than Node 20's did (measured here: 60-75 MiB of growth on 24, under
    // 25 MiB with --max-old-space-size=48, so garbage, not buffered data). Buffering the
    // stream would be its 256 MiB.
    assert.ok(
      peak - rss0 < 128 * 1024 * 1024,
      `RSS grew ${((peak - rss0) / 2 ** 20).toFixed(1)} MiB`,
    );
    c.destroy();
    b.destroy();
    await waitFor(() => fdsOf(lb.pid) <= fd0, 3000, 'balancer descriptors back to baseline');
    assert.equal(lb.proc.exitCode, null, 'no crash');
  });
}

test('fault: half-close each way through a slicer, with the last bytes after the FIN delivered', async (t) => {
  const tail = randomBytes(200_000);
  const be = await scriptedServer(t, (s) => {
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => {
      s.write(Buffer.concat(got));
      s.end(tail);
    });
  });
  const sliced = await faultProxy(t, be, { kind: 'slicer', size: 7 });
  const port = await refusedPort();
  const lb = await childLb(t, childToml(port, [sliced]));
  const fd0 = fdsOf(lb.pid);
  const c = await openClient(port);
  const reading = readAll(c);
  c.end('request-then-FIN');
  const all = await reading;
  assert.equal(all.subarray(0, 16).toString(), 'request-then-FIN');
  assert.ok(
    all.subarray(16).equals(tail),
    'every byte the backend sent after the client FIN arrived',
  );
  c.destroy();
  await waitFor(() => fdsOf(lb.pid) <= fd0, 3000, 'balancer descriptors back to baseline');
});

test('fault: backends that close right after accept, time out, or throttle: clients get a prompt answer, no crash', async (t) => {
  const closer = await closeAfterAccept(t);
  const silent = await faultProxy(t, await echoServer(t), { kind: 'timeout' });
  const slow = await faultProxy(t, await echoServer(t), {
    kind: 'bandwidth',
    bytesPerSecond: 64 * 1024,
  });
  const lb = await startLb(t, svc([addr(closer)], { idle_timeout: '500ms' }));
  const c1 = await openClient(lb.address('web').port);
  c1.resume();
  await once(c1, 'end');
  c1.destroy();
  const lb2 = await startLb(t, svc([addr(silent)], { idle_timeout: '300ms' }));
  const c2 = await openClient(lb2.address('web').port);
  c2.write('hello?');
  c2.resume();
  const t0 = Date.now();
  await once(c2, 'end');
  assert.ok(Date.now() - t0 < 2000, 'idle_timeout cut the silent backend');
  c2.destroy();
  const lb3 = await startLb(t, svc([addr(slow)]));
  const c3 = await openClient(lb3.address('web').port);
  const data = randomBytes(100_000);
  const r = readAll(c3);
  c3.end(data);
  assert.ok((await r).equals(data));
  c3.destroy();
});

test('fault: random churn, 200 clients for 30 s: descriptors and heap return to baseline', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)], { idle_timeout: '2s' }));
  const port = lb.address('web').port;
  const fd0 = fdCount();
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const until = Date.now() + 30_000;
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  async function client(): Promise<void> {
    while (Date.now() < until) {
      const c = await openClient(port).catch(() => null);
      if (!c) continue;
      c.resume();
      const steps = 1 + Math.floor(rnd() * 5);
      for (let i = 0; i < steps && !c.destroyed; i++) {
        const r = rnd();
        if (r < 0.5) c.write(randomBytes(1 + Math.floor(rnd() * 32_000)));
        else if (r < 0.7) await new Promise((res) => setTimeout(res, rnd() * 200));
        else if (r < 0.8) c.pause();
        else c.resume();
      }
      const end = rnd();
      if (end < 0.4) c.end();
      else if (end < 0.7) c.resetAndDestroy();
      else c.destroy();
      await new Promise((res) => setTimeout(res, rnd() * 50));
      c.destroy();
    }
  }
  await Promise.all(Array.from({ length: 200 }, client));
  await waitFor(() => lb.service('web').activeSessions === 0, 15_000, 'sessions to end');
  await waitFor(() => fdCount() <= fd0, 5000, `fd back to ${fd0} (now ${fdCount()})`);
  global.gc?.();
  const heap1 = process.memoryUsage().heapUsed;
  assert.ok(
    lb.service('web').counters.accepted > 1000,
    `churned ${lb.service('web').counters.accepted} sessions`,
  );
  if (global.gc)
    assert.ok(
      heap1 - heap0 < 8 * 1024 * 1024,
      `heap grew ${((heap1 - heap0) / 2 ** 20).toFixed(1)} MiB`,
    );
});

test('fault: descriptor exhaustion (ulimit -n 64): the balancer refuses clients itself near the limit, warns, no busy loop, recovery', async (t) => {
  const be = await echoServer(t);
  const lbPort = await refusedPort();
  const toml = childToml(lbPort, [be]).replace('level = "info"', 'level = "info"\naccess = true');
  const lb = await childLb(t, toml, 64);
  const held: Socket[] = [];
  let turnedAway = 0;
  await Promise.all(
    Array.from({ length: 150 }, async () => {
      const c = await openClient(lbPort).catch(() => null);
      if (!c) {
        turnedAway++;
        return;
      }
      held.push(c);
      // A client the balancer could not take is closed at once (libuv accepts and closes it).
      c.once('end', () => turnedAway++);
      c.resume();
    }),
  );
  await waitFor(() => turnedAway > 0, 5000, 'excess clients turned away');
  // The reserve (16 of 64) is kept for probes, refills and admin: the balancer stops short of it.
  await waitFor(() => fdsOf(lb.pid) >= 40, 5000, 'balancer near its descriptor limit');
  assert.ok(fdsOf(lb.pid) <= 56, `kept its reserve: ${fdsOf(lb.pid)} of 64 open`);
  assert.match(lb.out(), /open-file limit 64 is below the \d+ descriptors this config may hold/);
  await waitFor(
    () => lb.out().includes('refused: open descriptors near the limit'),
    5000,
    'refusals it made itself, logged',
  );
  // The access log line is written when the refused session ends, after the warning.
  await waitFor(
    () => lb.out().includes('"cause":"refused-limit"'),
    5000,
    'access-logged as refused-limit',
  );
  const stat0 = readCpu(lb.pid);
  await new Promise((r) => setTimeout(r, 1000));
  const used = readCpu(lb.pid) - stat0;
  assert.ok(
    used < 50,
    `balancer CPU while saturated: ${used * 10} ms in 1 s (no busy accept loop)`,
  );
  for (const c of held) c.destroy();
  await waitFor(() => fdsOf(lb.pid) < 40, 5000, 'descriptors released');
  const c = await openClient(lbPort);
  c.end('recovered');
  assert.equal((await readAll(c)).toString(), 'recovered');
  c.destroy();
  assert.equal(lb.proc.exitCode, null, 'still running');
});

function readCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]);
}

test('fault: 10,000 dials to a refused port and to a blackhole: descriptors flat, connect deadline holds', async (t) => {
  const dead = await refusedPort();
  const hole = await blackhole(t);
  for (const [target, timeout] of [
    [dead, '1s'],
    [hole, '150ms'],
  ] as const) {
    const lb = await startLb(
      t,
      svc([addr(target)], {
        max_retries: 0,
        connect_timeout: timeout,
        health: { kind: 'none', fall: 1_000_000 },
      }),
    );
    const port = lb.address('web').port;
    const fd0 = fdCount();
    let slowest = 0;
    for (let i = 0; i < 10_000; i += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, async () => {
          const c = await openClient(port);
          const t0 = Date.now();
          c.resume();
          await once(c, 'end');
          slowest = Math.max(slowest, Date.now() - t0);
          c.destroy();
        }),
      );
    }
    await waitFor(() => fdCount() <= fd0 + 5, 5000, `fds back to ${fd0} (now ${fdCount()})`);
    const s = lb.service('web');
    assert.equal(s.counters.connectFailed, 10_000);
    // Each client is answered within its dial deadline plus scheduling slack on a loaded 2-core machine.
    const deadline = target === hole ? 150 : 1000;
    assert.ok(
      slowest < deadline + 3000,
      `slowest client waited ${slowest} ms (deadline ${deadline} ms)`,
    );
    await lb.close(0);
  }
});

test('fault: slowloris, 1,000 clients trickling a byte every idle_timeout − ε: max_lifetime closes them', async (t) => {
  const be = await scriptedServer(t, (s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  const lb = await startLb(t, svc([addr(be)], { idle_timeout: '1s', max_lifetime: '2500ms' }));
  const port = lb.address('web').port;
  const fd0 = fdCount();
  const clients = await Promise.all(Array.from({ length: 1000 }, () => openClient(port)));
  const timers = clients.map((c) => {
    c.resume();
    c.write('x');
    return setInterval(() => c.write('x'), 800);
  });
  const start = Date.now();
  // The balancer destroys them with bytes unread, so a client sees a FIN or a reset.
  await Promise.all(clients.map((c) => new Promise((r) => c.once('close', r).once('end', r))));
  const took = Date.now() - start;
  for (const tm of timers) clearInterval(tm);
  for (const c of clients) c.destroy();
  assert.ok(took >= 2000 && took < 8000, `closed after ${took} ms`);
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'sessions to end');
  await waitFor(() => fdCount() <= fd0, 5000, 'fds back');
});
