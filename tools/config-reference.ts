/**
 * The "every key" part of docs/configuration.md, written from config.schema.json (which is
 * itself generated from the validator's field tables), so the reference cannot miss a key the
 * validator accepts. `npm run docs:config` rewrites the part between the markers; a test fails
 * when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const BEGIN = '<!-- every-key:begin (npm run docs:config writes this part) -->';
export const END = '<!-- every-key:end -->';

interface Node {
  description?: string;
  type?: string | string[];
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, Node>;
  additionalProperties?: Node | boolean;
  items?: Node;
  anyOf?: Node[];
  oneOf?: Node[];
}

interface Table {
  path: string;
  description: string;
  rows: { key: string; kind: string; text: string }[];
}

/** The object alternative of a node, if it is or may be a table. */
function objectOf(n: Node): Node | undefined {
  if (n.properties) return n;
  for (const alt of n.anyOf ?? n.oneOf ?? []) {
    const o = objectOf(alt);
    if (o) return o;
  }
  if (n.items) return objectOf(n.items);
  return undefined;
}

function kindOf(n: Node): string {
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join(' | ');
  const alts = n.anyOf ?? n.oneOf;
  if (alts) {
    const kinds = [...new Set(alts.map(kindOf))];
    // A duration is a string with a unit or whole milliseconds: one kind to a reader.
    if (kinds.includes('duration')) return 'duration';
    return kinds.join(' or ');
  }
  if (n.type === 'array') return n.items ? `list of ${kindOf(n.items)}` : 'list';
  if (n.type === 'object' || n.properties) return 'table';
  if (Array.isArray(n.type)) return n.type.join(' or ');
  if (n.type === 'string' && /duration/i.test(n.description ?? '')) return 'duration';
  return n.type ?? 'any';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
}

export function tablesOf(schema: Node): Table[] {
  const out: Table[] = [];
  const walk = (n: Node, path: string): void => {
    const o = objectOf(n);
    if (!o?.properties) {
      if (n.additionalProperties && typeof n.additionalProperties === 'object') {
        walk(n.additionalProperties, `${path}.NAME`);
      }
      return;
    }
    const t: Table = { path, description: n.description ?? o.description ?? '', rows: [] };
    out.push(t);
    for (const [key, child] of Object.entries(o.properties)) {
      t.rows.push({ key, kind: kindOf(child), text: child.description ?? '' });
      if (path === '' && key === 'defaults') continue;
      const sub = objectOf(child);
      const childPath = path ? `${path}.${key}` : key;
      if (sub?.properties)
        walk(child, child.type === 'array' || child.items ? `${childPath}[]` : childPath);
      else if (child.additionalProperties && typeof child.additionalProperties === 'object') {
        walk(child.additionalProperties, `${childPath}.NAME`);
      }
    }
  };
  walk(schema, '');
  return out;
}

export function render(schema: Node): string {
  const lines: string[] = [BEGIN, ''];
  for (const t of tablesOf(schema)) {
    if (t.path === '') continue;
    lines.push(`### \`[${t.path}]\``, '');
    if (t.description) lines.push(cell(t.description), '');
    lines.push('| key | value | what it does |', '|---|---|---|');
    for (const r of t.rows) lines.push(`| \`${r.key}\` | ${cell(r.kind)} | ${cell(r.text)} |`);
    lines.push('');
  }
  lines.push(END);
  return lines.join('\n');
}

/** Replaces the marked part of `doc` with the reference for `schema`. */
export function rewrite(doc: string, schema: Node): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error('docs/configuration.md has no every-key markers');
  return doc.slice(0, a) + render(schema) + doc.slice(b + END.length);
}

if (/config-reference\.[jt]s$/.test(process.argv[1] ?? '')) {
  const [schemaPath = 'config.schema.json', docPath = 'docs/configuration.md'] =
    process.argv.slice(2);
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Node;
  writeFileSync(docPath, rewrite(readFileSync(docPath, 'utf8'), schema));
}
