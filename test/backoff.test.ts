import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backend } from '../src/backend/backend.js';
import type { BackendSet } from '../src/backend/backend-set.js';
import { backendFromOptions } from '../src/config/backend-settings.js';
import type { ServiceConfig } from '../src/config/schema.js';
import type { LbError } from '../src/errors.js';
import type { LocalErrors } from '../src/local-errors.js';
import type { Logger } from '../src/logger.js';
import type { WarmPool } from '../src/pool/warm-pool.js';
import { Dialer } from '../src/proxy/dialer.js';
import { Connector } from '../src/upstream/connector.js';
import { refusedPort } from './helpers/servers.js';

test('retry backoff doubles from retry_delay and stops at 30 s, never past the setTimeout limit (retry 26+)', async (t) => {
  const port = await refusedPort();
  // From here setTimeout is the test's: the dialer's backoff timers fire only on tick().
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const backend = new Backend(backendFromOptions(`127.0.0.1:${port}`));
  let onRetry: (ms: number) => void = () => {};
  const nextRetry = (): Promise<number> => new Promise((resolve) => (onRetry = resolve));
  const dialer = new Dialer({
    cfg: {
      name: 'web',
      maxRetries: 30,
      retryDelayMs: 100,
      connectTimeoutMs: 2000,
    } as ServiceConfig,
    backends: {
      candidates: [backend],
      reserve() {},
      release() {},
      recordDialFailure() {},
    } as unknown as BackendSet,
    strategy: { update() {}, pick: () => backend },
    log: {
      debug: (fields: { retryInMs: number }) => onRetry(fields.retryInMs),
    } as unknown as Logger,
    pool: { take: () => null } as unknown as WarmPool,
    connector: new Connector(2000, null),
    clock: { now: () => 0 },
    localErrors: { claim: () => false } as unknown as LocalErrors,
    counters: { retries: 0, queued: 0 },
  });
  let failed: (err: LbError) => void = () => {};
  const gaveUp = new Promise<LbError>((resolve) => (failed = resolve));
  const delays: number[] = [];
  let retry = nextRetry();
  dialer.begin(
    {
      dialed: () => assert.fail('a refused port cannot connect'),
      dialFailed: (_a, err) => failed(err),
    },
    '127.0.0.1',
    false,
  );
  for (let i = 0; i < 30; i++) {
    const ms = await retry;
    delays.push(ms);
    retry = nextRetry();
    t.mock.timers.tick(ms);
  }
  assert.equal((await gaveUp).code, 'LB_ERR_DIAL');
  assert.deepEqual(
    delays.slice(0, 11),
    [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000],
  );
  assert.ok(
    delays.every((ms) => ms <= 30_000),
    `every backoff at most 30 s, got ${delays.join(', ')}`,
  );
});
