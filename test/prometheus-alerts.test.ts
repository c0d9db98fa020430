import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startAdmin, value } from './helpers/admin.js';
import { makePki } from './helpers/pki.js';
import { addr, httpServer, refusedPort, startLb, svc } from './helpers/servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RULES = join(root, 'examples', 'prometheus-alerts.yml');
const UNIT = join(root, 'test', 'prometheus-alerts.test.yml');
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const skip = !hasPromtool && 'promtool is not installed (Debian: prometheus; .ci/run installs it)';

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', input, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A balancer terminating TLS (so the certificate metric has a series), probed once, and its /metrics text. */
async function liveMetrics(t: TestContext): Promise<{ text: string; certFile: string }> {
  const pki = makePki(t);
  const a = await httpServer(t, 'a');
  // A backend whose probe fails, so the last-failure series exists.
  const gone = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(a), addr(gone)], {
      health: { kind: 'tcp', interval: '1h' },
      tls: { cert: pki.server.certFile, key: pki.server.keyFile },
    }),
  );
  await lb.performHealthCheck();
  const { metrics } = await startAdmin(t, lb);
  return { text: await metrics(), certFile: pki.server.certFile };
}

test('examples/prometheus-alerts.yml: promtool check rules accepts it', { skip }, () => {
  const r = promtool(['check', 'rules', RULES]);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: 7 rules found/);
});

test('examples/prometheus-alerts.yml: promtool test rules passes its unit tests, one or more per alert', {
  skip,
}, () => {
  const r = promtool(['test', 'rules', UNIT]);
  assert.equal(r.status, 0, r.out);
  const rules = readFileSync(RULES, 'utf8');
  const unit = readFileSync(UNIT, 'utf8');
  const alerts = [...rules.matchAll(/^\s+- alert: (\S+)$/gm)].map((m) => m[1] as string);
  // What the issue asks to be alerted on.
  assert.deepEqual(alerts, [
    'BlitzLbBackendDown',
    'BlitzLbServiceAllBackendsDown',
    'BlitzLbSessionsRefused',
    'BlitzLbQueueWaits',
    'BlitzLbConfigReloadFailed',
    'BlitzLbCertificateExpiring',
    'BlitzLbDialFailuresRising',
  ]);
  for (const a of alerts)
    assert.match(
      unit,
      new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels`),
      `${a} is seen firing`,
    );
});

test("every metric the alert rules query is in a live /metrics, and the certificate expiry is the certificate's", async (t) => {
  const { text, certFile } = await liveMetrics(t);
  const exposed = new Set(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0]),
  );
  const used = new Set(readFileSync(RULES, 'utf8').match(/\bblitz_lb_[a-z0-9_]+\b/g) ?? []);
  // Names in annotations count too: they point the operator at a metric.
  assert.ok(used.size >= 8, [...used].join(' '));
  for (const n of used) assert.ok(exposed.has(n), `${n} is not in /metrics`);
  const notAfter = Math.floor(
    new Date(new X509Certificate(readFileSync(certFile)).validTo).getTime() / 1000,
  );
  assert.equal(
    value(
      text,
      `blitz_lb_tls_certificate_expiry_timestamp_seconds{service="web",certificate="${certFile}"}`,
    ),
    notAfter,
  );
});

test('/metrics follows Prometheus naming: promtool check metrics finds nothing in blitz_lb_*, Unix times end in _timestamp_seconds, no server-computed rate', {
  skip,
}, async (t) => {
  const { text } = await liveMetrics(t);
  const ours = text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?blitz_lb_/.test(l))
    .join('\n');
  const r = promtool(['check', 'metrics'], `${ours}\n`);
  assert.equal(r.status, 0, r.out);
  assert.equal(r.out.trim(), '');
  const helps = [...text.matchAll(/^# HELP (blitz_lb_\S+) (.*)$/gm)].map((m) => ({
    name: m[1] as string,
    help: m[2] as string,
  }));
  assert.ok(helps.length >= 40);
  for (const { name, help } of helps) {
    if (/\bUnix time\b/.test(help))
      assert.match(name, /_timestamp_seconds$/, `${name} holds a Unix time: ${help}`);
    // A rate is Prometheus's to compute from a counter; `_max_rate` is a configured limit.
    assert.doesNotMatch(name, /(?<!_max)_rate$|_per_second$|_ms$|_milliseconds$/, name);
  }
});
