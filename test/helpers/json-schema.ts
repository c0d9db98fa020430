/**
 * A JSON Schema (draft-07) validator for the subset config.schema.json uses:
 * type, properties, additionalProperties, required, propertyNames, enum,
 * pattern, minLength, maxLength, minimum, maximum, items, minItems, anyOf.
 * A keyword it does not know fails loudly, so the schema cannot grow past
 * what this checks without the test noticing.
 */

export type Schema = { [k: string]: unknown };

const KNOWN = new Set([
  '$schema',
  'title',
  'description',
  'default',
  'type',
  'properties',
  'additionalProperties',
  'required',
  'propertyNames',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'items',
  'minItems',
  'anyOf',
]);

function typeOf(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every place `value` breaks `schema`, as "path: why". Empty: valid. */
export function validate(schema: Schema, value: unknown, path = '(root)'): string[] {
  for (const k of Object.keys(schema))
    if (!KNOWN.has(k))
      throw new Error(`${path}: schema keyword ${k} is not supported by this validator`);
  const errors: string[] = [];
  const err = (why: string) => errors.push(`${path}: ${why}`);
  if (schema.anyOf) {
    const options = schema.anyOf as Schema[];
    const results = options.map((o) => validate(o, value, path));
    if (!results.some((r) => r.length === 0))
      err(`matches none of ${options.length} shapes (${results.map((r) => r[0]).join(' | ')})`);
  }
  if (schema.type !== undefined) {
    const t = typeOf(value);
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) {
      err(`expected ${schema.type}, got ${t}`);
      return errors;
    }
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value))
    err(`${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      err(`${JSON.stringify(value)} does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      err(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      err(`longer than ${schema.maxLength}`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum)
      err(`${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum)
      err(`${value} > maximum ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      err(`fewer than ${schema.minItems} items`);
    if (schema.items)
      value.forEach((x, i) => {
        errors.push(...validate(schema.items as Schema, x, `${path}[${i}]`));
      });
  }
  if (isObject(value)) {
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[])
      if (!(r in value)) err(`missing required key ${r}`);
    for (const [k, x] of Object.entries(value)) {
      const at = `${path}.${k}`;
      if (schema.propertyNames)
        errors.push(...validate(schema.propertyNames as Schema, k, `${at} (name)`));
      if (props[k]) errors.push(...validate(props[k], x, at));
      else if (schema.additionalProperties === false) errors.push(`${at}: unknown key`);
      else if (isObject(schema.additionalProperties))
        errors.push(...validate(schema.additionalProperties, x, at));
    }
  }
  return errors;
}
