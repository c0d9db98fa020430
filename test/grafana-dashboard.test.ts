import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAdmin } from './helpers/admin.js';
import { addr, httpGet, httpServer, startLb, svc } from './helpers/servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

/** Every PromQL expression of the dashboard: its panels' targets and its variables' queries. */
function expressions(): { where: string; expr: string }[] {
  const d = JSON.parse(readFileSync(join(root, 'examples', 'grafana-dashboard.json'), 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; query?: { query?: string } | string }[] };
  };
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels) {
    if (p.type === 'row') continue;
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" queries nothing`);
    for (const t of p.targets ?? []) out.push({ where: p.title, expr: t.expr });
  }
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? null : v.query?.query;
    if (q) out.push({ where: `variable ${v.name}`, expr: q });
  }
  return out;
}

test('examples/grafana-dashboard.json: every metric it queries exists in a live /metrics', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(
    t,
    svc([{ address: addr(a), max_connections: 10, max_rate: 50 }], {
      health: { kind: 'tcp', interval: '1h' },
    }),
  );
  const { metrics } = await startAdmin(t, lb);
  await lb.performHealthCheck();
  assert.equal(await httpGet(lb.address('web').port), 'a');
  const text = await metrics();
  const exposed = new Set(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]),
  );
  const exprs = expressions();
  assert.ok(exprs.length >= 30, `only ${exprs.length} queries`);
  const names = new Set<string>();
  for (const { where, expr } of exprs) {
    const found = expr.match(/\b(?:blitz_lb|process|nodejs)_[a-z0-9_]+\b/g) ?? [];
    assert.ok(found.length > 0, `${where}: no metric in ${expr}`);
    for (const n of found) {
      names.add(n);
      assert.ok(exposed.has(n), `${where}: ${n} is not in /metrics`);
    }
  }
  // The dashboard covers what the issue asks an operator to see.
  for (const n of [
    'blitz_lb_backend_state',
    'blitz_lb_backend_weight',
    'blitz_lb_health_check_seconds_bucket',
    'blitz_lb_health_check_failures_total',
    'blitz_lb_backend_down_seconds_total',
    'blitz_lb_queue_length',
    'blitz_lb_queue_longest_wait_seconds',
    'blitz_lb_dial_failures_total',
    'blitz_lb_bytes_total',
    'blitz_lb_build_info',
    'blitz_lb_config_last_reload_successful',
    'process_start_time_seconds',
  ])
    assert.ok(names.has(n), `the dashboard does not show ${n}`);
});

test('examples/grafana-dashboard.json: job and instance variables, and every query selects by both', () => {
  const d = JSON.parse(readFileSync(join(root, 'examples', 'grafana-dashboard.json'), 'utf8')) as {
    templating: { list: { name: string }[] };
  };
  const vars = d.templating.list.map((v) => v.name);
  for (const v of ['job', 'instance']) assert.ok(vars.includes(v), `a $${v} variable`);
  // Grafana offers a variable only after the ones it depends on.
  assert.ok(vars.indexOf('job') < vars.indexOf('instance'));
  assert.ok(vars.indexOf('instance') < vars.indexOf('service'));
  for (const { where, expr } of expressions()) {
    if (where === 'variable job') continue;
    for (const m of expr.matchAll(/\b(?:blitz_lb|process|nodejs)_[a-z0-9_]+(\{[^}]*\})?/g)) {
      const sel = m[1] ?? '';
      assert.match(sel, /\bjob=~"\$job"/, `${where}: ${m[0]} selects by job`);
      if (where !== 'variable instance')
        assert.match(sel, /\binstance=~"\$instance"/, `${where}: ${m[0]} selects by instance`);
    }
  }
});
