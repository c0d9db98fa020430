import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { descriptorsNeeded } from '../src/proxy/fd-budget.js';

function needed(listen: string | string[]): number {
  const cfg = parseConfig(
    {
      services: {
        web: {
          listen,
          backends: ['127.0.0.1:1', '127.0.0.1:2'],
          max_connections: 100,
        },
      },
    },
    { source: '<test>' },
  );
  return descriptorsNeeded(cfg);
}

test('descriptorsNeeded counts a listener for each address of a `listen` list, not one per service', () => {
  const one = needed('127.0.0.1:7001');
  assert.equal(needed(['127.0.0.1:7001']), one);
  assert.equal(needed(['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003']), one + 2);
});
