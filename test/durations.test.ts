import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../src/config/duration.js';
import { configJsonSchema } from '../src/config/json-schema.js';
import { parseConfig } from '../src/config/schema.js';
import { startAdmin } from './helpers/admin.js';
import { validate } from './helpers/json-schema.js';
import { addr, echoServer, startLb, svc } from './helpers/servers.js';

const DAY = 86_400_000;

test('compound and day durations: "1m30s", "1d", "2d12h", "1h0m5s", "1.5m" and "250ms" all read', () => {
  for (const [text, ms] of [
    ['1m30s', 90_000],
    ['1d', DAY],
    ['2d12h', 2.5 * DAY],
    ['1h0m5s', 3_605_000],
    ['1.5m', 90_000],
    ['250ms', 250],
    ['1s500ms', 1500],
    ['5m', 300_000],
    ['1d1h1m1s1ms', DAY + 3_600_000 + 60_000 + 1000 + 1],
  ] as const)
    assert.equal(parseDuration(text), ms, text);
});

test('a duration with its parts out of order, repeated, spaced or cased says how to write it', () => {
  const err = (v: unknown) => {
    const r = parseDuration(v);
    assert.equal(typeof r, 'object', `${String(v)} must be refused`);
    return (r as { error: string }).error;
  };
  assert.match(err('30s1m'), /largest unit down, each once .* got "30s1m"/);
  assert.match(err('1m1m'), /largest unit down/);
  assert.match(err('1m 30s'), /without spaces: "1m30s"/);
  assert.match(err('1M30S'), /lower case .*write "1m30s"/);
  assert.match(err('-1m30s'), /must not be negative/);
  assert.match(err('1w'), /expected a duration with a unit \(d, h, m, s, ms\)/);
  assert.match(err('1m30'), /expected a duration with a unit/);
  assert.match(err(''), /expected a duration with a unit/);
});

test('the config takes compound durations at every duration key, and still bounds them', () => {
  const c = parseConfig(
    svc(['127.0.0.1:9001'], {
      idle_timeout: '1h30m',
      max_lifetime: '1d',
      connect_timeout: '1s500ms',
    }),
    { allowEphemeralListen: true },
  );
  const s = c.services[0];
  assert.equal(s?.idleTimeoutMs, 5_400_000);
  assert.equal(s?.maxLifetimeMs, DAY);
  assert.equal(s?.connectTimeoutMs, 1500);
  // max_lifetime stops at the longest timer Node keeps (about 24.8 days).
  assert.throws(
    () =>
      parseConfig(svc(['127.0.0.1:9001'], { max_lifetime: '30d' }), { allowEphemeralListen: true }),
    /services\.web\.max_lifetime: must be 0ms-24d \(2147483647ms\), got "30d"/,
  );
});

test('the JSON schema accepts exactly what the validator reads', () => {
  const schema = configJsonSchema();
  const doc = (v: string) => ({
    services: { web: { listen: '127.0.0.1:8080', backends: ['127.0.0.1:9001'], idle_timeout: v } },
  });
  for (const good of ['1m30s', '1d', '2d12h', '250ms', '1.5m', '1s500ms'])
    assert.deepEqual(validate(schema, doc(good)), [], good);
  for (const bad of ['30s1m', '1m1m', '1m 30s', '1w', '', 'ms', '1M'])
    assert.notDeepEqual(validate(schema, doc(bad)), [], bad);
});

test("the admin API takes a compound duration in a new backend's slow_start", async (t) => {
  const a = await echoServer(t);
  const b = await echoServer(t);
  const lb = await startLb(t, svc([addr(a)]));
  const api = await startAdmin(t, lb);
  const r = await api.call(
    'POST',
    `/api/services/web/backends/${addr(b)}`,
    '{"slow_start": "1m30s"}',
  );
  assert.equal(r.status, 201, r.text);
  assert.equal(lb.service('web').backends.get(addr(b))?.slowStartMs, 90_000);
  const bad = await api.call(
    'POST',
    `/api/services/web/backends/127.0.0.1:1`,
    '{"slow_start": "30s1m"}',
  );
  assert.equal(bad.status, 400);
  assert.match(bad.text, /slow_start: the parts of a duration go from the largest unit down/);
});
