/**
 * The description of every config key: its type, default, range and a sentence
 * of documentation. Each table's spec sits beside its validator (schema.ts,
 * health.ts, tls.ts…), which takes its key list, and for the plain keys its
 * default and range, from it; json-schema.ts turns the same specs into the JSON
 * Schema that editors read. A key added to a validator without a spec entry is
 * an unknown key, so the two cannot drift apart.
 */

interface Doc {
  readonly doc: string;
  /** The validator requires it. */
  readonly required?: true;
}

/** A duration: "250ms", "2s", "1.5m", "1h", or whole milliseconds. Defaults and bounds in ms. */
export interface DurationSpec extends Doc {
  readonly kind: 'duration';
  readonly default?: number;
  readonly min: number;
  readonly max: number;
}
export interface IntegerSpec extends Doc {
  readonly kind: 'integer';
  readonly default?: number;
  readonly min: number;
  readonly max: number;
}
export interface BooleanSpec extends Doc {
  readonly kind: 'boolean';
  readonly default?: boolean;
}
export interface EnumSpec<T extends string = string> extends Doc {
  readonly kind: 'enum';
  readonly values: readonly T[];
  readonly default?: T;
}
export interface StringSpec extends Doc {
  readonly kind: 'string';
  readonly default?: string;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
}
/** "host:port" or "[v6]:port". */
export interface AddressSpec extends Doc {
  readonly kind: 'address';
}
export interface ListSpec extends Doc {
  readonly kind: 'list';
  readonly items: FieldSpec;
  readonly minItems?: number;
}
export interface TableSpec extends Doc {
  readonly kind: 'table';
  readonly fields: Fields;
}
/** Any one of several shapes (a backend: "host:port" or a table; workers: a count or "auto"). */
export interface AnyOfSpec extends Doc {
  readonly kind: 'anyOf';
  readonly options: readonly FieldSpec[];
  readonly default?: unknown;
}

/** A table of tables by name ([services.NAME]). */
export interface MapSpec extends Doc {
  readonly kind: 'map';
  /** What a name must look like (a regular expression). */
  readonly names: string;
  readonly values: FieldSpec;
}

export type FieldSpec =
  | DurationSpec
  | IntegerSpec
  | BooleanSpec
  | EnumSpec
  | StringSpec
  | AddressSpec
  | ListSpec
  | TableSpec
  | AnyOfSpec
  | MapSpec;

export type Fields = Readonly<Record<string, FieldSpec>>;

/** A list of one or more items, each as `items` says. */
export function listOf(items: FieldSpec, doc: string): ListSpec {
  return { kind: 'list', minItems: 1, items, doc };
}

/** The keys a table accepts, in the order its spec lists them. */
export function keysOf(fields: Fields): readonly string[] {
  return Object.freeze(Object.keys(fields));
}

/**
 * The keys, at any depth below `fields`, that take a value of `kind` (alone or as one
 * of an anyOf's forms). Keys only: the same name in two tables shares the answer.
 */
export function keysOfKind(fields: Fields, kind: 'integer' | 'duration'): ReadonlySet<string> {
  const out = new Set<string>();
  const walk = (f: FieldSpec, key: string | null): void => {
    const own = f.kind === kind || (f.kind === 'anyOf' && f.options.some((o) => o.kind === kind));
    if (own && key !== null) out.add(key);
    if (f.kind === 'table') for (const [k, sub] of Object.entries(f.fields)) walk(sub, k);
    else if (f.kind === 'list') walk(f.items, null);
    else if (f.kind === 'map') walk(f.values, null);
    else if (f.kind === 'anyOf') for (const o of f.options) walk(o, null);
  };
  for (const [k, f] of Object.entries(fields)) walk(f, k);
  return out;
}
