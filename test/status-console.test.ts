import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { startAdmin } from './helpers/admin.js';
import {
  addr,
  httpGet,
  httpServer,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
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
const TOKEN = 'status-page-token';

/** A browser for the test, or null (and the test skipped) where chromium is missing outside CI. */
async function browser(t: TestContext): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) {
    assert.notEqual(process.env.CI, 'true', `${CHROMIUM} is missing in CI`);
    t.skip(`${CHROMIUM} not installed (apt-get install chromium)`);
    return null;
  }
  const b = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  t.after(() => b.close());
  return b;
}

test('status page: drain, disable, enable, weight and add act on the balancer, asking for the token once', async (t) => {
  const br = await browser(t);
  if (!br) return;
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const c = await httpServer(t, 'c');
  const lb = await startLb(t, svc([addr(a), addr(b)]));
  const { base } = await startAdmin(t, lb, { token: TOKEN });
  const page = await br.newPage({ viewport: { width: 1200, height: 700 } });
  await page.goto(base);
  const row = (x: number) => `[data-service="web"] tr[data-backend="${addr(x)}"]`;
  await page.waitForSelector(`${row(b)} .state.up`);
  const state = (x: number) => lb.service('web').backends.get(addr(x))?.state;

  await page.click(`${row(b)} button[data-action="drain"]`);
  await page.waitForSelector('#login.open');
  await page.fill('#token', TOKEN);
  await page.click('#login button');
  await waitFor(() => state(b) === 'draining', 3000, 'the drain');
  await page.waitForSelector(`${row(b)} .state.draining`);
  assert.equal(await page.evaluate("sessionStorage.getItem('blitz-lb-token')"), TOKEN);

  // The token is kept: no second question.
  await page.click(`${row(a)} button[data-action="disable"]`);
  await waitFor(() => state(a) === 'disabled', 3000, 'the disable');
  assert.equal(await page.locator('#login.open').count(), 0);
  await page.click(`${row(a)} button[data-action="enable"]`);
  await waitFor(() => state(a) === 'up', 3000, 'the enable');
  await page.click(`${row(b)} button[data-action="enable"]`);
  await waitFor(() => state(b) === 'up', 3000, 'the enable of b');

  await page.fill(`${row(a)} input.weight`, '5');
  await page.click(`${row(a)} button[data-action="weight"]`);
  await waitFor(() => lb.service('web').backends.get(addr(a))?.weight === 5, 3000, 'the weight');
  await page.waitForSelector(`${row(a)} td.w:text("5")`);

  await page.fill('[data-service="web"] form.add input[name=address]', addr(c));
  await page.fill('[data-service="web"] form.add input[name=weight]', '2');
  await page.click('[data-service="web"] form.add button');
  await waitFor(
    () => lb.service('web').backends.get(addr(c))?.weight === 2,
    3000,
    'the new backend',
  );
  await page.waitForSelector(`${row(c)} .state.up`);
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add(await httpGet(lb.address('web').port));
  assert.ok(seen.has('c'), 'the added backend takes traffic');

  // A bad weight is refused with the validator's words, shown on the page.
  await page.fill(`${row(a)} input.weight`, '-3');
  await page.click(`${row(a)} button[data-action="weight"]`);
  await page.waitForSelector('#error:text("must be 0-1000000")');
  assert.equal(lb.service('web').backends.get(addr(a))?.weight, 5);
});

test('status page: at 390 px no horizontal scroll; version, uptime, bytes, dial failures, refusals by cause, queue, a scaled sparkline', async (t) => {
  const br = await browser(t);
  if (!br) return;
  const a = await httpServer(t, 'a');
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(a), { address: addr(dead), weight: 1000000, backup: false }], { max_retries: 0 }),
  );
  const { base } = await startAdmin(t, lb);
  // The first client goes to the dead one (weight) and is refused: a dial failure, a refusal.
  for (let i = 0; i < 4; i++) await httpGet(lb.address('web').port).catch(() => '');
  const page = await br.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await page.goto(base);
  await page.waitForSelector('[data-service="web"] .refusals [data-cause="connect failed"]');
  const scroll = (await page.evaluate('document.scrollingElement.scrollWidth')) as number;
  assert.ok(scroll <= 390, `scrollWidth ${scroll}`);
  const about = (await page.locator('#about').textContent()) ?? '';
  assert.match(about, /^v\d+\.\d+\.\d+.* · up \d+s/);
  assert.match(
    (await page.locator('[data-service="web"] .refusals').textContent()) ?? '',
    /connect failed [1-9]/,
  );
  assert.notEqual(await page.locator('[data-service="web"] .dial-failures').textContent(), '0');
  assert.match(
    (await page.locator('[data-service="web"] .bytes').textContent()) ?? '',
    /[1-9]\d* B \/ [1-9]/,
  );
  assert.equal(await page.locator('[data-service="web"] .queue').textContent(), '0');
  // Two readings make a line; its scale says what the top means.
  await page.waitForSelector('[data-service="web"] .spark polyline', {
    state: 'attached',
    timeout: 5000,
  });
  assert.match(
    (await page.locator('[data-service="web"] .scale-max').textContent()) ?? '',
    /^\d+(\.\d)?\/s$/,
  );
  assert.equal(await page.locator('[data-service="web"] .scale-min').textContent(), '0/s');
  // Every backend's buttons are on the screen, not off to the right.
  const right = (await page.evaluate(
    "Math.max(...[...document.querySelectorAll('button, input')].map((e) => e.getBoundingClientRect().right))",
  )) as number;
  assert.ok(right <= 390, `a control ends at ${right}px`);
});

test('status page: dark theme under prefers-color-scheme: dark, light otherwise', async (t) => {
  const br = await browser(t);
  if (!br) return;
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { base } = await startAdmin(t, lb);
  const colours = async (scheme: 'dark' | 'light') => {
    const page = await br.newPage({ colorScheme: scheme });
    await page.goto(base);
    await page.waitForSelector('[data-service="web"] .card, section.card');
    const c = await page.evaluate(`(() => {
      const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
      return { bg: css('body', 'backgroundColor'), text: css('body', 'color'), card: css('.card', 'backgroundColor') };
    })()`);
    await page.close();
    return c;
  };
  assert.deepEqual(await colours('dark'), {
    bg: 'rgb(15, 20, 25)',
    text: 'rgb(230, 230, 230)',
    card: 'rgb(24, 32, 41)',
  });
  assert.deepEqual(await colours('light'), {
    bg: 'rgb(245, 247, 250)',
    text: 'rgb(31, 35, 40)',
    card: 'rgb(255, 255, 255)',
  });
});

test('status page: with a read_token the page asks for a token before it shows anything', async (t) => {
  const br = await browser(t);
  if (!br) return;
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { base } = await startAdmin(t, lb, { token: TOKEN, readToken: 'reader-token-1' });
  const page = await br.newPage();
  await page.goto(base);
  await page.waitForSelector('#login.open');
  assert.equal(await page.locator('section.card').count(), 0);
  await page.fill('#token', 'reader-token-1');
  await page.click('#login button');
  await page.waitForSelector('[data-service="web"] .state.up');
  // The read token cannot write: asked again, and nothing changes.
  await page.click(
    `[data-service="web"] tr[data-backend="${addr(a)}"] button[data-action="drain"]`,
  );
  await page.waitForSelector('#login.open');
  assert.equal(lb.service('web').backends.get(addr(a))?.state, 'up');
});
