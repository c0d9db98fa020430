import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { stateOf } from '../src/backend/follow.js';
import { backendConfig, setOf } from './helpers/backends.js';

/** Counts the set's events while `f` runs. */
function count(set: ReturnType<typeof setOf>, f: () => void): { change: number; state: number } {
  const n = { change: 0, state: 0 };
  const onChange = (): void => {
    n.change++;
  };
  const onState = (): void => {
    n.state++;
  };
  set.on('change', onChange);
  set.on('state', onState);
  f();
  set.off('change', onChange);
  set.off('state', onState);
  return n;
}

test('BackendSet emits change only when the candidates or their weights changed', () => {
  const set = setOf([
    backendConfig(9001),
    backendConfig(9002),
    backendConfig(9003, { backup: true }),
  ]);
  const [a, b, c] = set.all as [Backend, Backend, Backend];
  // Nothing moves: the same options, the same weight, the primary's same word, a reload of the same backend.
  assert.deepEqual(
    count(set, () => {
      set.setOptions({
        allDown: 'try-all',
        fall: 1,
        rise: 1,
        passiveOnly: false,
        trialBackoffMs: 1000,
      });
      set.setWeight(a.address, 1);
      set.setDraining(a.address, false);
      set.applyState(set.snapshot());
      set.reconfigure(backendConfig(9002));
    }),
    { change: 0, state: 0 },
  );
  // A weight is an input of the strategies: one change.
  assert.deepEqual(
    count(set, () => set.setWeight(a.address, 3)),
    { change: 1, state: 1 },
  );
  // The backup draining moves no candidate (primaries are up), but it is state the pool follows.
  assert.deepEqual(
    count(set, () => set.setDraining(c.address, true)),
    { change: 0, state: 1 },
  );
  // A primary going down changes the candidates.
  assert.deepEqual(
    count(set, () => set.markDown(b, 'test')),
    { change: 1, state: 1 },
  );
  assert.deepEqual(set.candidates, [a]);
  // The primary's word that b is down again, as a worker gets it: already so, so nothing.
  assert.deepEqual(
    count(set, () => set.applyState([stateOf(b)])),
    { change: 0, state: 0 },
  );
});

test('BackendSet: weights from code are checked like the file’s, with LB_ERR_INVALID_ARGUMENT', () => {
  const set = setOf([backendConfig(9001)]);
  const a = set.all[0] as Backend;
  for (const bad of [-1, 2.5, 1_000_001, Number.NaN]) {
    assert.throws(
      () => set.setWeight(a.address, bad),
      { code: 'LB_ERR_INVALID_ARGUMENT' },
      String(bad),
    );
  }
  assert.equal(a.weight, 1);
  set.setWeight(a.address, 1_000_000);
  assert.equal(a.weight, 1_000_000);
  // 0 is a soft stop (HAProxy's weight 0): allowed, and out of the candidates.
  set.setWeight(a.address, 0);
  assert.equal(a.weight, 0);
  assert.deepEqual(set.candidates, []);
});
