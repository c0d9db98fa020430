import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startAdmin } from './helpers/admin.js';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import {
  addr,
  echoServer,
  httpGet,
  httpServer,
  listen,
  openClient,
  startLb,
  svc,
} from './helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BROWSER_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** False (and the test skipped) where chromium is missing outside CI. */
function haveChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  // CI installs Debian's chromium (.ci/run); on a developer machine without it, say so instead of failing.
  assert.notEqual(process.env.CI, 'true', `${CHROMIUM} is missing in CI`);
  t.skip(`${CHROMIUM} not installed (apt-get install chromium)`);
  return false;
}

test('status page: a real browser shows a drained backend within 2 s, and a screenshot is saved', async (t) => {
  if (!haveChromium(t)) return;
  const ports = [await httpServer(t, 'a'), await httpServer(t, 'b'), await httpServer(t, 'c')];
  const lb = await startLb(
    t,
    svc(
      ports.map((p) => `127.0.0.1:${p}`),
      { health: { kind: 'tcp', interval: '1s' } },
    ),
  );
  const { admin } = await startAdmin(t, lb);
  const base = `http://127.0.0.1:${admin.address().port}`;
  for (let i = 0; i < 9; i++) await httpGet(lb.address('web').port);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1000, height: 420 } });
  await page.goto(base);
  const drainedRow = `[data-service="web"] tr[data-backend="127.0.0.1:${ports[1]}"] .state`;
  await page.waitForSelector(`${drainedRow}.up`, { timeout: 5000 });
  assert.equal(await page.locator('[data-service="web"] tbody tr').count(), 3);

  const r = await fetch(`${base}/api/services/web/backends/127.0.0.1:${ports[1]}/drain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200);
  const start = Date.now();
  await page.waitForSelector(`${drainedRow}.draining`, { timeout: 2000 });
  assert.ok(Date.now() - start <= 2000);
  assert.equal(await page.locator(drainedRow).textContent(), 'draining');

  const out = join(root, 'test-results');
  mkdirSync(out, { recursive: true });
  await page.screenshot({ path: join(out, 'status-page.png') });
  assert.ok(existsSync(join(out, 'status-page.png')));
});

test('status page with workers = 2: totals and each worker’s open sessions', async (t) => {
  if (!haveChromium(t)) return;
  const be = await echoServer(t);
  const lb = await runBalancer(t, twoWorkers([addr(be)]));
  const clients: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await openClient(lb.port);
    c.write('x');
    await once(c, 'data');
    clients.push(c);
  }
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1000, height: 420 } });
  await page.goto(`http://127.0.0.1:${lb.adminPort}/`);
  await page.waitForSelector('[data-service="web"] .workers [data-worker="2"]', { timeout: 5000 });
  const text = (await page.locator('[data-service="web"] .workers').textContent()) ?? '';
  const per = [...text.matchAll(/#(\d) (\d+)/g)].map((m) => Number(m[2]));
  assert.equal(per.length, 2);
  assert.equal((per[0] ?? 0) + (per[1] ?? 0), 4, text);
  assert.equal(await page.locator('[data-service="web"] .stats b').first().textContent(), '4');
});

test('a page on another site cannot disable a backend through the browser: form post and no-cors fetch are refused', async (t) => {
  if (!haveChromium(t)) return;
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { admin } = await startAdmin(t, lb);
  const target = `http://127.0.0.1:${admin.address().port}/api/services/web/backends/${addr(a)}/disable`;
  // Both are "simple" cross-origin requests: the browser sends them without asking first.
  const evil = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<form method="POST" action="${target}"><input name="x" value="1"></form>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' })
  .finally(() => document.forms[0].submit());
</script>`);
  });
  const evilPort = await listen(t, evil as never);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const statuses: number[] = [];
  page.on('response', (r) => {
    if (r.url() === target) statuses.push(r.status());
  });
  const formAnswer = page.waitForResponse(
    (r) => r.url() === target && r.request().resourceType() === 'document',
  );
  await page.goto(`http://127.0.0.1:${evilPort}/`);
  assert.equal((await formAnswer).status(), 403);
  assert.deepEqual(statuses, [403, 403], 'the fetch and the form post');
  assert.equal(lb.service('web').backends.all[0]?.state, 'up');
});
