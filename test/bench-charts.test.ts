import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { barChart, benchCharts, tickStep } from '../bench/lib/charts.js';
import type { Results, Summary } from '../bench/lib/report.js';
import { readResults, writeResultsPage } from '../bench/lib/results-page.js';

interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
}

/**
 * A strict well-formedness check for the XML the charts use: one root, every tag
 * closed in order, attributes quoted and unique, only the five predefined entities,
 * no stray "<" or "&". Returns the elements in document order.
 */
function parseXml(src: string): Element[] {
  const out: Element[] = [];
  const stack: Element[] = [];
  let i = 0;
  let roots = 0;
  const entity = /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;
  const checkText = (t: string) => {
    for (let j = t.indexOf('&'); j >= 0; j = t.indexOf('&', j + 1))
      assert.ok(entity.test(t.slice(j)), `bad entity at ${t.slice(j, j + 10)}`);
  };
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = lt < 0 ? src.slice(i) : src.slice(i, lt);
    checkText(text);
    if (stack.length > 0) (stack[stack.length - 1] as Element).text += text;
    else assert.equal(text.trim(), '', `text outside the root: ${text.trim().slice(0, 20)}`);
    if (lt < 0) break;
    const gt = src.indexOf('>', lt);
    assert.ok(gt > lt, 'an unclosed tag');
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const open = stack.pop();
      assert.equal(open?.name, tag.slice(1), `</${tag.slice(1)}> closes <${open?.name}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*$/.exec(body);
    assert.ok(m, `malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of (m[2] as string).matchAll(/([\w:-]+)="([^"]*)"/g)) {
      assert.ok(!((a[1] as string) in attrs), `duplicate attribute ${a[1]}`);
      checkText(a[2] as string);
      attrs[a[1] as string] = a[2] as string;
    }
    const el = { name: m[1] as string, attrs, text: '' };
    if (stack.length === 0) roots++;
    out.push(el);
    if (!selfClosing) stack.push(el);
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.map((e) => e.name).join(', ')}`);
  assert.equal(roots, 1, 'one root element');
  return out;
}

const summary = (o: Partial<Summary>): Summary => ({
  rps: 1000,
  p50: 1,
  p99: 2,
  errors: 0,
  cpuUs: Number.NaN,
  peakRssMiB: 50,
  gbitUp: 1,
  gbitDown: 1,
  kibPerSession: Number.NaN,
  ...o,
});

const FIXTURE: Results = {
  date: '2026-11-28T00:00:00Z',
  quick: false,
  rounds: 3,
  opts: { seconds: 10, bulkBytes: 2 ** 30, idleSessions: 9900 },
  machine: { cpu: 'Test CPU', cores: 2, node: 'v20', backends: 'node', haproxy: null, nginx: null },
  scenarios: {
    'keep-alive': {
      direct: summary({}),
      'blitz-lb': summary({ cpuUs: 17.2 }),
      'blitz-lb (pool off)': summary({ cpuUs: 17.7 }),
      'node-tcp-proxy': summary({ cpuUs: 17.8 }),
      haproxy: summary({ cpuUs: 13.2 }),
      'nginx <stream> & co': summary({ cpuUs: 8.6 }),
    },
    churn: { 'blitz-lb': summary({ cpuUs: 141 }), haproxy: summary({ cpuUs: 62.8 }) },
    bulk: { direct: summary({}) },
    idle: {
      'blitz-lb': summary({ kibPerSession: 7.33 }),
      haproxy: summary({ kibPerSession: 3.3 }),
    },
  },
};

test('bench charts: a chart is well-formed SVG with one bar, value and label per measured target', () => {
  const [cpu] = benchCharts(FIXTURE);
  assert.equal(cpu?.file, 'chart-cpu-per-request.svg');
  const els = parseXml(cpu?.svg ?? '');
  assert.equal(els[0]?.name, 'svg');
  assert.equal(els[0]?.attrs.xmlns, 'http://www.w3.org/2000/svg');
  const of = (cls: string) => els.filter((e) => e.attrs.class === cls);
  const bars = of('bar');
  // direct has no CPU figure (NaN): no bar for it.
  assert.deepEqual(
    bars.map((b) => b.attrs['data-label']),
    [
      'blitz-lb',
      'blitz-lb (pool off)',
      'node-tcp-proxy',
      'haproxy',
      'nginx &lt;stream&gt; &amp; co',
    ],
  );
  assert.deepEqual(
    of('value').map((v) => v.text),
    ['17.2', '17.7', '17.8', '13.2', '8.6'],
  );
  // Labels: the part before " (" on one line, the rest under it.
  assert.deepEqual(
    of('label').map((l) => l.text),
    [
      'blitz-lb',
      'blitz-lb',
      '(pool off)',
      'node-tcp-proxy',
      'haproxy',
      'nginx &lt;stream&gt; &amp; co',
    ],
  );
  assert.equal(of('title')[0]?.text, 'keep-alive: CPU per request (lower is better)');
  assert.equal(of('unit')[0]?.text, 'µs of CPU per request');
  // The axis: ticks 0, 5, … 20 (the round step above 17.8), and bar heights to scale.
  assert.deepEqual(
    of('tick').map((t) => t.text),
    ['0', '5', '10', '15', '20'],
  );
  assert.equal(of('axis').length, 2);
  const h = (i: number) => Number(bars[i]?.attrs.height);
  const bottom = (i: number) => Number(bars[i]?.attrs.y) + h(i);
  assert.ok(Math.abs(h(0) / h(3) - 17.2 / 13.2) < 0.01, 'heights are proportional to values');
  assert.ok(Math.abs(bottom(0) - bottom(3)) < 0.2, 'bars stand on one baseline');
  const ticks = of('tick');
  const y20 = Number(ticks[4]?.attrs.y);
  const y0 = Number(ticks[0]?.attrs.y);
  assert.ok(Math.abs((y0 - y20) * (17.2 / 20) - h(0)) < 0.2, 'a bar reaches its value on the axis');
  // Ours coloured, peers grey, side by side left to right.
  assert.equal(bars[0]?.attrs.fill, bars[1]?.attrs.fill);
  assert.notEqual(bars[0]?.attrs.fill, bars[3]?.attrs.fill);
  const xs = bars.map((b) => Number(b.attrs.x));
  assert.deepEqual(
    xs,
    [...xs].sort((a, b) => a - b),
  );
});

test('bench charts: the three figures, and a scenario with no figure draws no chart', () => {
  assert.deepEqual(
    benchCharts(FIXTURE).map((c) => c.file),
    ['chart-cpu-per-request.svg', 'chart-cpu-per-connection.svg', 'chart-memory-per-session.svg'],
  );
  const noIdle = { ...FIXTURE, scenarios: { ...FIXTURE.scenarios, idle: {} } };
  assert.deepEqual(
    benchCharts(noIdle).map((c) => c.file),
    ['chart-cpu-per-request.svg', 'chart-cpu-per-connection.svg'],
  );
  const mem = parseXml(benchCharts(FIXTURE)[2]?.svg ?? '');
  assert.deepEqual(
    mem.filter((e) => e.attrs.class === 'value').map((e) => e.text),
    ['7.33', '3.30'],
  );
});

test('bench charts: round tick steps', () => {
  assert.equal(tickStep(17.8), 5);
  assert.equal(tickStep(141), 50);
  assert.equal(tickStep(7.33), 2);
  assert.equal(tickStep(0.9), 0.2);
  assert.equal(tickStep(0), 1);
  // An empty chart is still a valid picture.
  parseXml(barChart({ title: 't', unit: 'u', bars: [], digits: 0 }));
});

test('bench:charts: from a results file with nulls (JSON of NaN), RESULTS.md embeds the charts written beside it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-charts-'));
  try {
    const file = join(dir, 'latest.json');
    writeFileSync(file, JSON.stringify(FIXTURE));
    const r = readResults(file);
    assert.ok(Number.isNaN(r.scenarios['keep-alive']?.direct?.cpuUs), 'null read back as NaN');
    const written = writeResultsPage(dir, r);
    assert.deepEqual(written, [
      'chart-cpu-per-request.svg',
      'chart-cpu-per-connection.svg',
      'chart-memory-per-session.svg',
      'RESULTS.md',
    ]);
    const md = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    for (const f of written.slice(0, 3)) {
      assert.match(md, new RegExp(`!\\[[^\\]]+\\]\\(${f.replace('.', '\\.')}\\)`));
      parseXml(readFileSync(join(dir, f), 'utf8'));
    }
    // A figure not measured shows as "–" in the tables, not as 0 (null / 1000 would be 0).
    assert.match(md, /\n\| direct \| 1\.00 \| 1\.00 \| – \| – \| 50\.0 \| 0 \|\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench: the shipped RESULTS.md embeds the shipped charts, drawn from bench/results/latest.json', () => {
  const bench = join(import.meta.dirname, '..', '..', 'bench');
  const r = readResults(join(bench, 'results', 'latest.json'));
  const md = readFileSync(join(bench, 'RESULTS.md'), 'utf8');
  for (const c of benchCharts(r)) {
    assert.ok(md.includes(`](${c.file})`), `RESULTS.md shows ${c.file}`);
    assert.equal(
      readFileSync(join(bench, c.file), 'utf8'),
      c.svg,
      `${c.file} is current: npm run bench:charts`,
    );
  }
});
