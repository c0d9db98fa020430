import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { ConfigError, ConfigSyntaxError } from '../src/errors.js';
import { runCli, tempConfig } from './helpers/cli.js';

function syntaxError(text: string): ConfigSyntaxError {
  try {
    parseToml(text, 'c.toml');
  } catch (err) {
    assert.ok(err instanceof ConfigSyntaxError, String(err));
    return err;
  }
  assert.fail('expected a syntax error');
}

// Each mistake, the place the caret goes, and the sentence: never the parser's grammar dump.
const SYNTAX: { name: string; text: string; at: [number, number]; reason: RegExp }[] = [
  {
    name: 'an unquoted duration',
    text: '[services.web]\nconnect_timeout = 2s\n',
    at: [2, 19],
    reason: /^durations are strings: write "2s" \(or whole milliseconds: 2000\)$/,
  },
  {
    name: 'an unquoted duration in milliseconds, with a comment after it',
    text: 'retry_delay = 250ms   # first backoff\n',
    at: [1, 15],
    reason: /^durations are strings: write "250ms"/,
  },
  {
    name: 'an unterminated string',
    text: 'listen = "127.0.0.1:8080\nbalance = "random-two"\n',
    at: [1, 10],
    reason: /^the string is not closed: end it with " on the same line/,
  },
  {
    name: 'a table header without its "]"',
    text: '[services.web\nlisten = "127.0.0.1:8080"\n',
    at: [1, 14],
    reason: /^a table header needs its closing "\]": write \[services\.web\]$/,
  },
  {
    name: 'an array left open (the parser stops at the next line)',
    text: 'backends = [\n  "127.0.0.1:9001",\n  "127.0.0.1:9002"\n[services.web.health]\n',
    at: [1, 12],
    reason: /^the array backends = \[ is not closed: add "\]"/,
  },
  {
    name: 'a bare word value',
    text: '[services.web.health]\nkind = tcp\n',
    at: [2, 8],
    reason: /^tcp is a bare word; strings need quotes: write kind = "tcp"$/,
  },
  {
    name: 'an unquoted address inside an array',
    text: 'backends = ["127.0.0.1:9001", 127.0.0.1:9002]\n',
    at: [1, 31],
    reason: /^addresses are strings: write "127\.0\.0\.1:9002"$/,
  },
  {
    name: 'a missing comma between elements',
    text: 'backends = ["127.0.0.1:9001" "127.0.0.1:9002"]\n',
    at: [1, 30],
    reason: /^a "," is missing between two elements$/,
  },
  {
    name: 'a capitalised boolean',
    text: 'access = True\n',
    at: [1, 10],
    reason: /^booleans are lower case: write true$/,
  },
  {
    name: 'a duplicate key',
    text: '[services.web]\nlisten = "127.0.0.1:1"\nlisten = "127.0.0.1:2"\n',
    at: [3, 1],
    reason: /^services\.web\.listen is set twice in the same table; keep one of them$/,
  },
  {
    name: 'a duplicate table',
    text: '[services.web]\nlisten = "127.0.0.1:1"\n[services.web]\nbackends = []\n',
    at: [3, 1],
    reason: /^\[services\.web\] is defined a second time .*merge the two$/,
  },
  {
    name: 'something after a whole value',
    text: 'max_connections = 200\'\nsni = ["*"]   5\n',
    at: [1, 22],
    reason:
      /^"'" after the value of max_connections: one value per key \(a comment starts with #\)$/,
  },
  {
    name: 'a key without "="',
    text: 'listen "127.0.0.1:8080"\n',
    at: [1, 8],
    reason: /^expected "listen = value": a key needs "=" and then its value$/,
  },
];

for (const c of SYNTAX) {
  test(`TOML syntax: ${c.name}`, () => {
    const e = syntaxError(c.text);
    assert.deepEqual([e.line, e.column], c.at);
    assert.match(e.reason, c.reason);
    assert.doesNotMatch(e.message, /Expected|but .* found/, 'no grammar dump');
    // The message: file:line:col, the reason, then the line and a caret under the column.
    const [head, src, caret] = e.message.split('\n');
    assert.equal(head, `c.toml:${c.at[0]}:${c.at[1]}: ${e.reason}`);
    assert.equal(src, ` ${c.at[0]} | ${c.text.split('\n')[c.at[0] - 1]}`);
    assert.equal(caret?.indexOf('^'), (src as string).indexOf('|') + 2 + c.at[1] - 1);
  });
}

test('TOML syntax: a caret under a tab-indented line keeps the tab, so it lines up', () => {
  const e = syntaxError('[services.web]\n\tidle_timeout = 5m\n');
  assert.equal(e.message.split('\n')[2], '   | \t               ^');
});

test('check: a syntax error prints the line and the caret, exit 2', (t) => {
  const text = '[services.web]\nlisten = "127.0.0.1:8080"\nconnect_timeout = 2s\n';
  const r = runCli(['check', '--config', tempConfig(t, text)]);
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /config\.toml:3:19: durations are strings: write "2s" \(or whole milliseconds: 2000\)\n 3 \| connect_timeout = 2s\n {3}\| {19}\^\n/,
  );
});

function problems(text: string): string[] {
  try {
    parseConfig(parseToml(text, 'c.toml'), { source: 'c.toml' });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected the config to be refused');
}

test('a service key written below [services.web.health] says it belongs above the sub-table', () => {
  const text = [
    '[services.web]',
    'listen = "127.0.0.1:8080"',
    'backends = ["127.0.0.1:9001"]',
    '[services.web.health]',
    'kind = "tcp"',
    'max_retries = 5',
    'intervall = "1s"',
  ].join('\n');
  const p = problems(text);
  assert.equal(p.length, 2, p.join('\n'));
  assert.match(
    p[0] as string,
    /^c\.toml: services\.web\.health\.max_retries: not a health key: max_retries is a key of \[services\.web\], written below the \[services\.web\.health\] header.*move it above \[services\.web\.health\]$/,
  );
  // A plain typo in the sub-table still gets the closest health key.
  assert.match(p[1] as string, /health\.intervall: unknown key; did you mean "interval"\?/);
});

test('the same hint for the pool, tls, backend_tls and discovery sub-tables, and for [defaults]', () => {
  for (const sub of ['pool', 'tls', 'backend_tls', 'discovery']) {
    const text = `[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n[services.web.${sub}]\nidle_timeout = "1m"\n`;
    const p = problems(text).filter((x) => x.includes('idle_timeout'));
    assert.equal(p.length, 1, `${sub}: ${p.join('\n')}`);
    assert.match(
      p[0] as string,
      new RegExp(
        `services\\.web\\.${sub}\\.idle_timeout: not a ${sub} key: .*move it above \\[services\\.web\\.${sub}\\]`,
      ),
    );
  }
  const p = problems(
    '[defaults.pool]\nmax_retries = 1\n[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n',
  );
  assert.ok(
    p.some((x) =>
      /services\.web\.pool\.max_retries: not a pool key: max_retries is a key of \[defaults\], .*above \[defaults\.pool\]/.test(
        x,
      ),
    ),
    p.join('\n'),
  );
});

test('durations: a negative one and an upper-case unit get their own sentence', () => {
  const svc = (extra: string) =>
    `[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n${extra}\n`;
  assert.deepEqual(problems(svc('idle_timeout = "-1s"')), [
    'c.toml: services.web.idle_timeout: must not be negative, got "-1s"',
  ]);
  assert.deepEqual(problems(svc('idle_timeout = -1000')), [
    'c.toml: services.web.idle_timeout: must not be negative, got -1000',
  ]);
  assert.deepEqual(problems(svc('retry_delay = "5S"')), [
    'c.toml: services.web.retry_delay: units are lower case (d, h, m, s, ms): write "5s", got "5S"',
  ]);
  assert.deepEqual(problems(svc('retry_delay = "1MS"')), [
    'c.toml: services.web.retry_delay: units are lower case (d, h, m, s, ms): write "1ms", got "1MS"',
  ]);
});
