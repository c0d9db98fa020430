import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { cfgOf, tempDir as tempDirOf } from './helpers/config.js';
import {
  answering,
  discovering,
  namedServer,
  session,
  waitForBackends,
} from './helpers/discovery.js';
import { readBytes, startLb, waitFor } from './helpers/servers.js';

const tempDir = (t: TestContext): string => tempDirOf(t, 'blitz-lb-disc-');

/** Writes a new file beside `file` and renames it over it, as deploy tools and editors do. */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

test('file: replaced by an atomic rename and edited in place, re-read at once; a half-written one keeps the last list', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'backends.json');
  const a = await namedServer(t, '127.0.0.1');
  const b = await namedServer(t, '127.0.0.1');
  const c = await namedServer(t, '127.0.0.1');
  writeFileSync(file, JSON.stringify([a.address]));
  // interval = 1h: only the directory watch can bring changes in time.
  const lb = await startLb(t, discovering({ kind: 'file', path: file, interval: '1h' }));
  const svc = lb.service('web');
  await waitForBackends(lb, [a.address]);
  const port = lb.address('web').port;
  const onA = await session(port);
  assert.equal(onA.backend, a.address);

  replace(file, JSON.stringify({ backends: [b.address, { address: c.address, backup: true }] }));
  await waitForBackends(lb, [a.address, b.address, c.address]);
  assert.equal(svc.backends.get(a.address)?.state, 'draining', 'a drains: a session is open on it');
  assert.equal(svc.backends.get(c.address)?.backup, true);
  assert.deepEqual([...(await answering(port, 4))], [b.address], 'b serves, c is the backup');
  onA.client.write('on');
  assert.equal((await readBytes(onA.client, 2)).toString(), 'on');
  onA.client.end();
  await waitForBackends(lb, [b.address, c.address]);

  // Edited in place: truncated and rewritten, no new inode.
  writeFileSync(file, JSON.stringify([a.address, b.address]));
  await waitForBackends(lb, [a.address, b.address]);

  // Half written: bad JSON, the list stays; the rest of the write brings the change.
  const before = svc.discoveryStatus?.failures ?? 0;
  writeFileSync(file, '["127.0.0.1:');
  await waitFor(() => (svc.discoveryStatus?.failures ?? 0) > before, 5000, 'a failure');
  assert.match(svc.discoveryStatus?.lastError ?? '', /bad JSON/);
  await waitForBackends(lb, [a.address, b.address]);
  replace(file, JSON.stringify([c.address]));
  await waitForBackends(lb, [c.address]);
  assert.equal(svc.discoveryStatus?.failing, 0);
});

test('file: TOML works too; static backends and discovered ones combine, and a reload keeps each its own', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'backends.toml');
  const other = join(dir, 'other.json');
  const s1 = await namedServer(t, '127.0.0.1');
  const d1 = await namedServer(t, '127.0.0.1');
  const d2 = await namedServer(t, '127.0.0.1');
  writeFileSync(file, `backends = ["${d1.address}", { address = "${s1.address}", weight = 9 }]\n`);
  writeFileSync(other, JSON.stringify([d2.address]));
  const raw = discovering({ kind: 'file', path: file, interval: '1h' }, { backends: [s1.address] });
  const lb = await startLb(t, raw);
  const svc = lb.service('web');
  await waitForBackends(lb, [s1.address, d1.address]);
  assert.equal(
    svc.backends.get(s1.address)?.weight,
    1,
    'a static backend is the file’s, not discovery’s',
  );

  const web = (raw.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  const reload = (svcRaw: Record<string, unknown>) =>
    lb.reload(cfgOf({ ...raw, services: { web: { ...web, ...svcRaw } } }));

  // A reload that changes only a static weight keeps the discovered backend.
  const d1Obj = svc.backends.get(d1.address);
  await reload({ backends: [{ address: s1.address, weight: 2 }] });
  assert.equal(svc.backends.get(d1.address), d1Obj, 'the discovered backend is kept as it was');
  assert.equal(svc.backends.get(s1.address)?.weight, 2);

  // Discovery drops s1 from its list: s1 is static and stays.
  replace(file, `backends = ["${d1.address}"]\n`);
  await waitFor(() => svc.discoveryStatus?.found === 1, 5000, 'the new list');
  assert.equal(svc.backends.get(s1.address)?.state, 'up');

  // Other discovery settings: the watcher restarts on the other file, and the diff applies.
  await reload({ discovery: { kind: 'file', path: other, interval: '1h' } });
  await waitForBackends(lb, [s1.address, d2.address]);
  replace(other, JSON.stringify([d1.address, d2.address]));
  await waitForBackends(lb, [s1.address, d1.address, d2.address]);

  // The file now lists d1 statically: static from here; discovery dropping it removes nothing.
  await reload({
    backends: [s1.address, d1.address],
    discovery: { kind: 'file', path: other, interval: '1h' },
  });
  replace(other, JSON.stringify([d2.address]));
  await waitFor(() => svc.discoveryStatus?.found === 1, 5000, 'the new list');
  await waitForBackends(lb, [s1.address, d1.address, d2.address]);

  // No discovery section any more: discovered backends drain and go; static ones stay.
  const { discovery: _, ...withoutDiscovery } = web;
  await lb.reload(
    cfgOf({
      ...raw,
      services: { web: { ...withoutDiscovery, backends: [s1.address, d1.address] } },
    }),
  );
  await waitForBackends(lb, [s1.address, d1.address]);
  assert.equal(svc.discoveryStatus, null);
});
