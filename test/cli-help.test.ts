import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLI, runCli, tempConfig } from './helpers/cli.js';

test('help: `blitz-lb help` and --help show commands, examples, exit codes and signals; exit 0', () => {
  for (const args of [['help'], ['--help']]) {
    const r = runCli(args);
    assert.equal(r.status, 0, `${args}: ${r.stderr}`);
    for (const cmd of ['run', 'check', 'demo', 'schema', 'help'])
      assert.match(r.stdout, new RegExp(`^ {2}${cmd}\\b`, 'm'), `${args}: lists ${cmd}`);
    assert.match(r.stdout, /^Examples:\n {2}blitz-lb run --config config\.toml/m);
    assert.match(r.stdout, /check --config config\.toml --json/);
    assert.match(
      r.stdout,
      /^Exit codes:\n {2}0 .*\n {2}1 .*runtime failure.*\n {2}2 .*bad config or usage/m,
    );
    assert.match(r.stdout, /^Signals \(run, demo\):\n {2}SIGTERM, SIGINT .*shutdown_timeout/m);
    assert.match(r.stdout, /SIGHUP +re-read the config file/);
    assert.match(r.stdout, /SIGUSR2 +upgrade: start the blitz-lb on disk/);
    // Every signal the process handles is in the help.
    const handled = [...readFileSync(CLI, 'utf8').matchAll(/process\.on\('(SIG[A-Z0-9]+)'/g)].map(
      (m) => m[1] as string,
    );
    assert.ok(handled.length >= 4, `found the handlers: ${handled}`);
    for (const sig of handled)
      assert.match(r.stdout, new RegExp(`\\b${sig}\\b`), `help lists ${sig}`);
  }
});

test('help: `blitz-lb help check` shows the check options', () => {
  const r = runCli(['help', 'check']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: blitz-lb check \[options\]/);
  assert.match(r.stdout, /--print +print the effective config/);
  assert.match(r.stdout, /--json +print \{valid, errors, warnings, config\}/);
});

test('an unknown command gets the closest command by edit distance, exit 2', () => {
  const cases: [string, string | null][] = [
    ['chek', 'check'],
    ['chekc', 'check'],
    ['rnu', 'run'],
    ['schmea', 'schema'],
    ['dmeo', 'demo'],
    ['frobnicate', null],
  ];
  for (const [typed, meant] of cases) {
    const r = runCli([typed, '--config', 'config.toml']);
    assert.equal(r.status, 2, typed);
    assert.equal(r.stdout, '', `${typed}: nothing started`);
    if (meant)
      assert.match(
        r.stderr,
        new RegExp(`^blitz-lb: unknown command "${typed}"; did you mean \`${meant}\`\\?`),
        typed,
      );
    else {
      assert.match(r.stderr, new RegExp(`^blitz-lb: unknown command "${typed}" \\(commands: `));
      assert.doesNotMatch(r.stderr, /did you mean/);
    }
  }
});

test('schema: `blitz-lb schema` prints a JSON Schema, exit 0', () => {
  const r = runCli(['schema']);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { $schema: string; required: string[]; properties: object };
  assert.equal(s.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.deepEqual(s.required, ['services']);
  assert.deepEqual(Object.keys(s.properties), [
    'process',
    'log',
    'admin',
    'defaults',
    'services',
    'cluster',
  ]);
});

interface CheckJson {
  file: string;
  valid: boolean;
  errors: { message: string; path?: string; line?: number; column?: number }[];
  warnings: { message: string; path?: string; line?: number; column?: number }[];
  config: Record<string, Record<string, Record<string, unknown>>> | null;
}

test('check --json: a valid file: valid, no errors, the effective config; exit 0', (t) => {
  const file = tempConfig(
    t,
    '[admin]\nlisten = "0.0.0.0:9900"\n[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n',
  );
  const r = runCli(['check', '--config', file, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as CheckJson;
  assert.equal(j.valid, true);
  assert.equal(j.file, file);
  assert.deepEqual(j.errors, []);
  assert.equal(j.config?.services?.web?.connect_timeout, '2s', 'defaults filled in');
  assert.equal(j.config?.services?.web?.max_retries, 3);
  assert.deepEqual(j.warnings, [
    {
      path: 'admin.listen',
      message:
        '0.0.0.0:9900 is not a loopback address: anyone who can reach it can change backends, and no token is set',
      line: 2,
      column: 1,
    },
  ]);
});

test('check --json: schema errors carry their key path, line and column; exit 2', (t) => {
  const text = [
    '[services.web]',
    'listen = "127.0.0.1:8080"',
    'backends = ["127.0.0.1:9001", "9002"]',
    '  conect_timeout = "1s"',
    '[services.web.health]',
    'max_retries = 2',
  ].join('\n');
  const r = runCli(['check', '--config', tempConfig(t, text), '--json']);
  assert.equal(r.status, 2);
  const j = JSON.parse(r.stdout) as CheckJson;
  assert.equal(j.valid, false);
  assert.equal(j.config, null);
  assert.deepEqual(
    j.errors.map((e) => [e.path, e.line, e.column]),
    [
      ['services.web.conect_timeout', 4, 3],
      // Inside an array: the line of the key that holds it.
      ['services.web.backends[1]', 3, 1],
      ['services.web.health.max_retries', 6, 1],
    ],
  );
  assert.match(j.errors[0]?.message ?? '', /^unknown key; did you mean "connect_timeout"\?$/);
  assert.match(j.errors[1]?.message ?? '', /expected "host:port"/);
  assert.match(j.errors[2]?.message ?? '', /move it above \[services\.web\.health\]/);
});

test('check --json: a TOML syntax error has the line, column and the plain sentence', (t) => {
  const r = runCli([
    'check',
    '--config',
    tempConfig(t, '[services.web]\nidle_timeout = 10m\n'),
    '--json',
  ]);
  assert.equal(r.status, 2);
  const j = JSON.parse(r.stdout) as CheckJson;
  assert.deepEqual(j.errors, [
    {
      message: 'durations are strings: write "10m" (or whole milliseconds: 600000)',
      line: 2,
      column: 16,
    },
  ]);
});
