// Issue 28 item 4: upload_rate / download_rate (per session and per source), held by
// pausing the reading side, with real sockets on loopback. Short transfers (1 MiB at
// 1 MiB/s); the bench (npm run bench:bandwidth) holds 20 MiB at 4 MiB/s to 5 %.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createRegistry } from '../src/admin/metrics.js';
import { parseRate } from '../src/config/rate.js';
import { parseConfig } from '../src/config/schema.js';
import type { LoadBalancer } from '../src/load-balancer.js';
import type { Bandwidth } from '../src/proxy/bandwidth.js';
import { BURST_MS } from '../src/proxy/token-bucket.js';
import {
  addr,
  openClient,
  readAll,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

const MiB = 1024 * 1024;
/** One read of a socket: what a paused side may still pass on past its bucket. */
const CHUNK = 64 * 1024;

function bandwidthOf(lb: LoadBalancer): Bandwidth {
  // The service's sessions own it; reached the way the admin API reaches its sessions.
  const svcObj = lb.service('web') as unknown as { data: { sessions: { bandwidth: Bandwidth } } };
  return svcObj.data.sessions.bandwidth;
}

/**
 * The time `size` bytes take at `rate`: the bucket starts full (BURST_MS worth) and the
 * last chunk's debt is never waited for, so at least (size - burst - chunk) / rate;
 * at most size / rate plus scheduling slack.
 */
function assertRate(ms: number, size: number, rate: number, what: string): void {
  const low = ((size - (rate * BURST_MS) / 1000 - CHUNK) / rate) * 1000;
  const high = (size / rate) * 1000 + 350;
  assert.ok(
    ms >= low * 0.97,
    `${what}: ${ms} ms is faster than the limit allows (>= ${low.toFixed(0)} ms)`,
  );
  assert.ok(ms <= high, `${what}: ${ms} ms is slower than the limit (<= ${high.toFixed(0)} ms)`);
}

/** A backend that sends `size` bytes, then its FIN, once the client's first byte arrives. */
function sender(t: TestContext, size: number): Promise<number> {
  return scriptedServer(t, (s) => {
    s.once('data', () => {
      s.resume();
      s.end(Buffer.alloc(size, 7));
    });
  });
}

test('download_rate: 1 MiB at 1 MiB/s takes about a second, never much less or more', async (t) => {
  const be = await sender(t, MiB);
  const lb = await startLb(t, svc([addr(be)], { download_rate: '1MiB' }));
  const c = await openClient(lb.address('web').port);
  const start = performance.now();
  c.write('go');
  const got = await readAll(c);
  const ms = performance.now() - start;
  assert.equal(got.length, MiB);
  assertRate(ms, MiB, MiB, 'download');
  c.destroy();
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'the session to end');
  assert.equal(bandwidthOf(lb).pausedCount, 0);
  // /metrics: the backend side was held (about once per 100 ms of burst), the client never.
  const text = await createRegistry(lb).metrics();
  const downloads = Number(
    /blitz_lb_bandwidth_pauses_total\{service="web",direction="download"\} (\d+)/.exec(text)?.[1],
  );
  assert.ok(downloads >= 5, `download pauses counted: ${downloads}`);
  assert.match(text, /blitz_lb_bandwidth_pauses_total\{service="web",direction="upload"\} 0/);
  assert.match(text, /blitz_lb_bandwidth_paused_sessions\{service="web"\} 0/);
});

test('upload_rate: 1 MiB at 1 MiB/s, every byte delivered in order', async (t) => {
  let received = 0;
  let doneAt = 0;
  const be = await scriptedServer(t, (s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('end', () => {
      doneAt = performance.now();
      s.end('ok');
    });
  });
  const lb = await startLb(t, svc([addr(be)], { upload_rate: 1024 * 1024 }));
  const c = await openClient(lb.address('web').port);
  const start = performance.now();
  c.end(Buffer.alloc(MiB, 1));
  assert.equal((await readAll(c)).toString(), 'ok', 'the FIN followed the last paused byte');
  assert.equal(received, MiB);
  assertRate(doneAt - start, MiB, MiB, 'upload');
  c.destroy();
});

test('a session without a limit runs unpaced and carries no shaper', async (t) => {
  const be = await sender(t, 4 * MiB);
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.write('go');
  await waitFor(() => lb.service('web').openSessions.size === 1, 3000, 'the session');
  const [s] = lb.service('web').openSessions;
  assert.equal(s?.shaper, null);
  const start = performance.now();
  assert.equal((await readAll(c)).length, 4 * MiB);
  assert.ok(performance.now() - start < 1000, 'loopback speed, not a rate');
  c.destroy();
  assert.doesNotMatch(
    await createRegistry(lb).metrics(),
    /^blitz_lb_bandwidth_/m,
    'no rate, no series',
  );
});

test('download_rate_per_source: two sessions of one client share one rate; the bucket goes with the last', async (t) => {
  const be = await sender(t, MiB / 2);
  const lb = await startLb(t, svc([addr(be)], { download_rate_per_source: '1MiB' }));
  const port = lb.address('web').port;
  const [a, b] = [await openClient(port), await openClient(port)];
  const start = performance.now();
  a.write('go');
  b.write('go');
  const [ga, gb] = await Promise.all([readAll(a), readAll(b)]);
  const ms = performance.now() - start;
  assert.equal(ga.length + gb.length, MiB);
  // Together, as one: half a MiB each would take half a second on its own.
  assertRate(ms, MiB, MiB, 'two sessions of one source');
  assert.equal(bandwidthOf(lb).sourceCount, 1, 'held while its sessions are open');
  a.destroy();
  b.destroy();
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'the sessions to end');
  assert.equal(bandwidthOf(lb).sourceCount, 0, 'freed with the last session of the source');
});

test('a slow reader under a rate limit: the balancer buffers no more than its socket holds', async (t) => {
  let backend: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backend = s;
    s.once('data', () => {
      // As fast as the balancer takes it: 128 MiB offered, written on each 'drain'.
      const block = Buffer.alloc(CHUNK, 3);
      let left = 2048;
      const pump = (): void => {
        while (left > 0 && !s.destroyed) {
          left--;
          if (!s.write(block)) return;
        }
      };
      s.on('drain', pump);
      pump();
    });
  });
  // A rate above what loopback's socket buffers absorb in the wait below (about 10 MiB).
  const lb = await startLb(t, svc([addr(be)], { download_rate: '64MiB' }));
  const c = await openClient(lb.address('web').port);
  c.write('go');
  c.pause(); // never reads
  await waitFor(() => backend !== undefined, 3000, 'backend accept');
  await waitFor(
    () => (lb.service('web').openSessions.values().next().value?.client.bytesWritten ?? 0) > 0,
    3000,
    'bytes toward the client',
  );
  // Long enough for 64 MiB/s to pass 38 MiB, had nothing pushed back.
  await new Promise((r) => setTimeout(r, 600));
  const s = lb.service('web').openSessions.values().next().value;
  assert.ok(s, 'the session is open');
  const held = s.client.writableLength;
  assert.ok(held <= 2 * CHUNK, `the balancer holds ${held} bytes for the slow client`);
  const sent = (backend as Socket).bytesWritten;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((backend as Socket).bytesWritten, sent, 'the backend is held back, not drained');
  c.destroy();
});

test('a client that half-closes while its upload is paused: every byte, then the FIN', async (t) => {
  let received = 0;
  const be = await scriptedServer(t, (s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('end', () => s.end(String(received)));
  });
  const lb = await startLb(t, svc([addr(be)], { upload_rate: '256KiB' }));
  const c = await openClient(lb.address('web').port);
  c.write(Buffer.alloc(256 * 1024, 2));
  await waitFor(
    () => lb.service('web').openSessions.values().next().value?.shaper?.upPaused === true,
    3000,
    'the upload paused',
  );
  c.end(Buffer.alloc(64 * 1024, 2)); // FIN while paused
  assert.equal((await readAll(c)).toString(), String(320 * 1024));
  c.destroy();
});

test('a reload mid-transfer: a new rate applies to the open session at once', async (t) => {
  const be = await sender(t, 3 * MiB);
  const raw = svc([addr(be)], { download_rate: '256KiB' });
  const lb = await startLb(t, raw);
  const c = await openClient(lb.address('web').port);
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
  });
  c.write('go');
  await waitFor(() => got >= 256 * 1024, 5000, 'the first bytes, slowly');
  await lb.reload(
    parseConfig(svc([addr(be)], { download_rate: '4MiB' }), {
      source: '<test>',
      allowEphemeralListen: true,
    }),
  );
  const start = performance.now();
  await once(c, 'end');
  const ms = performance.now() - start;
  assert.equal(got, 3 * MiB);
  // The rest at 4 MiB/s is well under a second; at the old rate it would be ten.
  assert.ok(ms < 1500, `the rest took ${ms} ms`);
  c.destroy();
});

test('rates: units, bounds and mistakes are explained', () => {
  assert.equal(parseRate('10MiB'), 10 * MiB);
  assert.equal(parseRate('500KB'), 500_000);
  assert.equal(parseRate('1.5MiB/s'), 1.5 * MiB);
  assert.equal(parseRate(4096), 4096);
  assert.equal(parseRate(0), 0);
  assert.equal(parseRate('0'), 0);
  const err = (v: unknown): string => {
    const r = parseRate(v);
    return typeof r === 'number' ? '' : r.error;
  };
  assert.match(err(-1), /must not be negative/);
  assert.match(err('-5MiB'), /must not be negative/);
  assert.match(err('1TB'), /at most 16GiB/);
  assert.match(err(100), /at least 1024 bytes/);
  assert.match(err('10m'), /ambiguous: write "MiB" \(1024\) or "MB" \(1000\)/);
  assert.match(err('10mb'), /bytes, not bits/);
  assert.match(err('10Mbps'), /bytes, not bits/);
  assert.match(err('fast'), /expected a rate/);
  assert.match(err(1.5), /whole bytes/);
  assert.match(err(true), /expected a rate/);
  const bad = (extra: Record<string, unknown>): string => {
    try {
      parseConfig(svc(['127.0.0.1:1'], extra), { source: 'c.toml', allowEphemeralListen: true });
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  assert.match(bad({ upload_rate: '1TB' }), /c\.toml: services\.web\.upload_rate: at most 16GiB/);
  assert.match(
    bad({ download_rate_per_source: -1 }),
    /services\.web\.download_rate_per_source: must not be negative/,
  );
  assert.equal(bad({ upload_rate: 0, download_rate: '10MiB' }), '');
});

test('workers: each holds its share of a per-source rate; a session rate stays whole', async () => {
  const { workerShare } = await import('../src/cluster/share.js');
  const cfg = parseConfig(
    svc(['127.0.0.1:1'], { download_rate: '4MiB', download_rate_per_source: '3MiB' }),
    { source: '<test>', allowEphemeralListen: true },
  );
  const shares = [1, 2, 3].map((slot) => workerShare(cfg, 3, slot).services[0]);
  assert.deepEqual(
    shares.map((s) => s?.downloadRatePerSource),
    [MiB, MiB, MiB],
  );
  assert.deepEqual(
    shares.map((s) => s?.downloadRate),
    [4 * MiB, 4 * MiB, 4 * MiB],
  );
});

test('a side paused for its limit is not silent: client_timeout does not cut it', async (t) => {
  const be = await scriptedServer(t, (s) => s.resume());
  // 8 KiB at 1 KiB/s: the client's reading is paused for about 8 s after its first read.
  const lb = await startLb(t, svc([addr(be)], { upload_rate: '1KiB', client_timeout: '300ms' }));
  const c = await openClient(lb.address('web').port);
  c.resume();
  c.write(Buffer.alloc(8 * 1024, 5));
  const first = (): { shaper: { upPaused: boolean } | null } | undefined =>
    lb.service('web').openSessions.values().next().value;
  await waitFor(() => first()?.shaper?.upPaused === true, 3000, 'the upload paused');
  // Three client_timeouts: the client sent everything at once; we are the ones not reading.
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(lb.service('web').activeSessions, 1);
  assert.equal(first()?.shaper?.upPaused, true);
  assert.equal(lb.service('web').counters.endedClientTimeout, 0);
  c.destroy();
});

test('a limited session whose warm socket dies untouched is redialled with its pacing listeners moved, not doubled', async (t) => {
  const held: Socket[] = [];
  const be = await scriptedServer(t, (s) => {
    held.push(s);
    s.pipe(s);
  });
  const lb = await startLb(
    t,
    svc([addr(be)], {
      upload_rate: '1MiB',
      download_rate: '1MiB',
      pool: { min_idle: 1, max_idle: 1 },
    }),
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 1 && held.length === 1, 3000, 'pool to fill');
  const c = await openClient(lb.address('web').port);
  await waitFor(() => s.pool.counters.hits === 1 && s.activeSessions === 1, 3000, 'checkout');
  // The backend closes the socket just handed over, before any byte: the session redials.
  for (const x of held.splice(0)) x.end();
  await waitFor(() => s.counters.retries === 1, 3000, 'the fresh redial');
  // One copy each way: a client still carrying the dead leg's data listener would send twice.
  c.end('paced once');
  assert.equal((await readAll(c)).toString(), 'paced once');
  c.destroy();
  assert.equal(s.counters.connectFailed, 0);
});
