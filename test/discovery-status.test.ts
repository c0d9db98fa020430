import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { AdminServer } from '../src/admin/server.js';
import { createLogger } from '../src/logger.js';
import { discovering, namedServer, waitForBackends } from './helpers/discovery.js';
import { startLb } from './helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';

test('status page: a service shows what discovery found, and says so when it fails', async (t) => {
  if (!existsSync(CHROMIUM)) {
    assert.notEqual(process.env.CI, 'true', `${CHROMIUM} is missing in CI`);
    t.skip(`${CHROMIUM} not installed (apt-get install chromium)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-disc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'backends.json');
  const a = await namedServer(t, '127.0.0.1');
  writeFileSync(file, JSON.stringify([a.address]));
  const lb = await startLb(t, discovering({ kind: 'file', path: file, interval: '1h' }));
  await waitForBackends(lb, [a.address]);
  const admin = new AdminServer(lb, {
    listen: { host: '127.0.0.1', port: 0, address: '127.0.0.1:0' },
    token: null,
    reload: null,
    log: createLogger('silent'),
  });
  await admin.start();
  t.after(() => admin.close());

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${admin.address().port}`);
  const line = page.locator('[data-service="web"] .discovery');
  await line.waitFor({ timeout: 5000 });
  assert.match((await line.textContent()) ?? '', new RegExp(`discovery file ${file} · 1 found`));

  writeFileSync(file, '[');
  await page.waitForSelector('[data-service="web"] .discovery .failing', { timeout: 5000 });
  assert.match(
    (await line.textContent()) ?? '',
    /failing \(1\): .*bad JSON.* keeping the last list/,
  );
});
