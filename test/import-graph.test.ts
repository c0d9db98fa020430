import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The import graph of src/ (type-only imports and re-exports included), read
 * from the TypeScript sources: tests run from dist/test, and src/ is two up.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** Every relative module a file imports or re-exports from, as a path under src/ ("proxy/session.ts"). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'/g)) {
    const target = resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'));
    out.push(relative(SRC, target));
  }
  return out;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources(SRC)) g.set(relative(SRC, f), importsOf(f));
  return g;
}

/** The strongly connected components with more than one module (Tarjan): each one is a cycle. */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (g.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('import graph: no cycle in src/, type-only imports included', () => {
  const g = graph();
  assert.ok(g.size > 100, `read ${g.size} modules from ${SRC}`);
  assert.deepEqual(cycles(g), []);
});

test('import graph: the cycle check finds a cycle when there is one', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(cycles(g), [['a.ts', 'b.ts', 'c.ts']]);
});

test('import graph: config/ imports only config/, errors.ts and leaves (modules that import nothing)', () => {
  const g = graph();
  const outside: string[] = [];
  for (const [from, tos] of g) {
    if (!from.startsWith('config/')) continue;
    for (const to of tos) {
      if (to.startsWith('config/') || to === 'errors.ts') continue;
      if ((g.get(to) ?? ['?']).length === 0) continue;
      outside.push(`${from} -> ${to}`);
    }
  }
  assert.deepEqual(outside, []);
});
