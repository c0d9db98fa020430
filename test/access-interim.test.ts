import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAdmin } from './helpers/admin.js';
import { logLines } from './helpers/log-lines.js';
import {
  addr,
  echoServer,
  ended,
  openClient,
  readBytes,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

test('access lines: the session id the admin API lists, interim lines every access_interval while open, then the closing line', async (t) => {
  const e = await echoServer(t);
  const { logger, access } = logLines('info');
  const lb = await startLb(
    t,
    { ...svc([addr(e)]), log: { level: 'info', access: true, access_interval: '200ms' } },
    { logger },
  );
  const api = await startAdmin(t, lb);
  const port = lb.address('web').port;
  // A short session first, so ids and lines are not trivially "1".
  const first = await openClient(port);
  first.resume();
  first.end('x');
  await ended(first);
  const c = await openClient(port);
  c.write('hello');
  await readBytes(c, 5);
  const listed = (await api.call('GET', '/api/services/web/sessions')).json() as {
    sessions: { id: string }[];
  };
  assert.equal(listed.sessions.length, 1);
  const id = listed.sessions[0]?.id as string;
  assert.equal(id, '2');
  const interim = () => access().filter((l) => l.session === id && l.interim === true);
  await waitFor(() => interim().length >= 1, 5000, 'a first interim line');
  c.write('more!');
  await readBytes(c, 5);
  await waitFor(
    () => interim().some((l) => (l.bytesIn as number) === 10),
    5000,
    'an interim line with the bytes so far',
  );
  const lines = interim();
  assert.equal(lines[0]?.cause, null, 'no cause while open');
  assert.equal(lines[0]?.backend, addr(e));
  assert.ok((lines[0]?.ms as number) >= 200, 'after access_interval');
  c.resume();
  c.end();
  await ended(c);
  await waitFor(
    () => access().some((l) => l.session === id && l.interim === undefined),
    5000,
    'the closing line',
  );
  const closing = access().find((l) => l.session === id && l.interim === undefined);
  assert.equal(closing?.bytesIn, 10);
  assert.equal(closing?.cause, 'client-closed');
  assert.equal(access().find((l) => l.session === '1' && l.interim === undefined)?.bytesIn, 1);
  // Ages at whole intervals, one line each: never two for the same interval.
  const ages = interim().map((l) => Math.floor((l.ms as number) / 200));
  assert.deepEqual(ages, [...new Set(ages)], `one interim line per interval: ${ages}`);
});
