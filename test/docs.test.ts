import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import toml from 'toml';
import { parseConfig } from '../src/config/schema.js';
import { rewrite, tablesOf } from '../tools/config-reference.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function markdownFiles(): string[] {
  const docs = join(root, 'docs');
  return [
    join(root, 'README.md'),
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(docs, f)),
  ];
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function prose(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, -N for repeats. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { line } of prose(readFileSync(file, 'utf8'))) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = (m[1] as string)
      .trim()
      .toLowerCase()
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    out.add(k === 0 ? base : `${base}-${k}`);
  }
  return out;
}

test('docs: every relative link and anchor in README.md and docs/ resolves', () => {
  const broken: string[] = [];
  const anchors = new Map<string, Set<string>>();
  const anchorsFor = (f: string): Set<string> => {
    let a = anchors.get(f);
    if (!a) {
      a = anchorsOf(f);
      anchors.set(f, a);
    }
    return a;
  };
  let links = 0;
  for (const file of markdownFiles()) {
    for (const { line, n } of prose(readFileSync(file, 'utf8'))) {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] as string;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        links++;
        const [path = '', frag] = target.split('#', 2);
        const dest = path === '' ? file : resolve(dirname(file), path);
        const where = `${relative(root, file)}:${n}: ${target}`;
        if (!existsSync(dest)) {
          broken.push(`${where} (no such file)`);
          continue;
        }
        if (frag !== undefined && dest.endsWith('.md') && !anchorsFor(dest).has(frag)) {
          broken.push(`${where} (no such heading)`);
        }
        if (frag !== undefined && !dest.endsWith('.md') && statSync(dest).isDirectory()) {
          broken.push(`${where} (an anchor into a directory)`);
        }
      }
    }
  }
  assert.ok(links > 100, `only ${links} relative links found: is the parser broken?`);
  assert.deepEqual(broken, []);
});

test('docs: every config key the schema knows is in the configuration reference, which is current', () => {
  const schema = JSON.parse(readFileSync(join(root, 'config.schema.json'), 'utf8'));
  const doc = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');
  assert.ok(rewrite(doc, schema) === doc, 'docs/configuration.md is stale: npm run docs:config');
  const missing: string[] = [];
  for (const t of tablesOf(schema)) {
    for (const r of t.rows) {
      // The file's own tables are documented as headings (`[process]`, `[services.NAME]`).
      const shown = t.path === '' ? `[${r.key}` : `\`${r.key}\``;
      if (!doc.includes(shown)) missing.push(t.path === '' ? r.key : `${t.path}.${r.key}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('docs: nothing cites a file outside the repository', () => {
  const outside: string[] = [];
  for (const file of markdownFiles()) {
    for (const { line, n } of prose(readFileSync(file, 'utf8'))) {
      if (/\.\.\/shared\/|DESIGN\.md/.test(line)) outside.push(`${relative(root, file)}:${n}`);
    }
  }
  assert.deepEqual(outside, []);
});

test("docs: the front page's first config is one `check` accepts", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /```toml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md has a toml block');
  const cfg = parseConfig(toml.parse(block[1] as string), { source: 'README.md' });
  assert.equal(cfg.services.length, 1);
  assert.equal(cfg.services[0]?.health.kind, 'http');
});
