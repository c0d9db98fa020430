import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { BackendSet } from '../src/backend/backend-set.js';
import { RoundRobin } from '../src/balancer/round-robin.js';
import type { PickContext } from '../src/balancer/strategy.js';
import type { AllDownPolicy } from '../src/config/schema.js';

interface Row {
  name: string;
  /** name:weight, with ! for down, ~ for draining, ^ for backup. */
  backends: string[];
  allDown?: AllDownPolicy;
  tried?: string[];
  picks: number;
  expect: string;
}

const rows: Row[] = [
  { name: 'equal weights rotate', backends: ['a:1', 'b:1', 'c:1'], picks: 6, expect: 'abcabc' },
  { name: 'smooth 5:1:1 (nginx)', backends: ['a:5', 'b:1', 'c:1'], picks: 7, expect: 'aabacaa' },
  { name: 'weights 2:1', backends: ['a:2', 'b:1'], picks: 6, expect: 'abaaba' },
  { name: 'a down backend is skipped', backends: ['a:1', '!b:1', 'c:1'], picks: 4, expect: 'acac' },
  {
    name: 'a draining backend is skipped',
    backends: ['~a:1', 'b:1', 'c:1'],
    picks: 4,
    expect: 'bcbc',
  },
  {
    name: 'backups wait while a primary is up',
    backends: ['a:1', '^b:1'],
    picks: 3,
    expect: 'aaa',
  },
  {
    name: 'backups serve when every primary is down',
    backends: ['!a:1', '^b:1', '^c:1'],
    picks: 4,
    expect: 'bcbc',
  },
  {
    name: 'all down, try-all: every non-draining backend',
    backends: ['!a:1', '!b:1', '~!c:1'],
    picks: 4,
    expect: 'abab',
  },
  {
    name: 'all down, refuse: nothing',
    backends: ['!a:1', '!b:1'],
    allDown: 'refuse',
    picks: 2,
    expect: '--',
  },
  {
    name: 'tried backends are skipped while others remain',
    backends: ['a:1', 'b:1', 'c:1'],
    tried: ['a', 'b'],
    picks: 3,
    expect: 'ccc',
  },
  {
    name: 'when every backend was tried, rotation resumes',
    backends: ['a:1', 'b:1'],
    tried: ['a', 'b'],
    picks: 2,
    expect: 'ab',
  },
];

for (const row of rows) {
  test(`round-robin: ${row.name}`, () => {
    const specs = row.backends.map((s) => {
      const m = /^([!~^]*)([a-z]):(\d+)$/.exec(s);
      assert.ok(m);
      return { flags: m[1] as string, name: m[2] as string, weight: Number(m[3]) };
    });
    const set = new BackendSet(
      specs.map((s, i) => ({
        address: `127.0.0.1:${9000 + i}`,
        host: '127.0.0.1',
        port: 9000 + i,
        weight: s.weight,
        backup: s.flags.includes('^'),
      })),
      {
        allDown: row.allDown ?? 'try-all',
        fall: 1,
        rise: 1,
        passiveOnly: false,
        trialBackoffMs: 1000,
      },
    );
    const rr = new RoundRobin();
    set.on('change', (c) => rr.update(c));
    const byName = new Map(specs.map((s, i) => [s.name, set.all[i]]));
    const nameOf = new Map(specs.map((s, i) => [set.all[i], s.name]));
    specs.forEach((s, i) => {
      const b = set.all[i];
      assert.ok(b);
      if (s.flags.includes('!')) set.markDown(b, 'test');
      if (s.flags.includes('~')) set.setDraining(b.address, true);
    });
    rr.update(set.candidates);
    const ctx: PickContext = {
      clientIp: '127.0.0.1',
      tried: (row.tried ?? []).map((n) => byName.get(n) as Backend),
    };
    let seq = '';
    for (let i = 0; i < row.picks; i++) {
      const b = rr.pick(ctx);
      seq += b ? nameOf.get(b) : '-';
    }
    assert.equal(seq, row.expect);
  });
}

test('round-robin: a weight change takes effect on the next pick', () => {
  const set = new BackendSet(
    [
      { address: '127.0.0.1:1', host: '127.0.0.1', port: 1, weight: 1, backup: false },
      { address: '127.0.0.1:2', host: '127.0.0.1', port: 2, weight: 1, backup: false },
    ],
    { allDown: 'try-all', fall: 1, rise: 1, passiveOnly: false, trialBackoffMs: 1000 },
  );
  const rr = new RoundRobin();
  rr.update(set.candidates);
  set.on('change', (c) => rr.update(c));
  set.setWeight('127.0.0.1:1', 3);
  const ctx: PickContext = { clientIp: '', tried: [] };
  const seq = Array.from({ length: 8 }, () => rr.pick(ctx)?.port).join('');
  assert.equal(seq, '11211121');
});
