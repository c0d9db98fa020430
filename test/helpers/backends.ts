import { type Backend, type BackendEntry, entryOf } from '../../src/backend/backend.js';
import { BackendSet, type Follower } from '../../src/backend/backend-set.js';
import type { AllDownPolicy, BackendConfig } from '../../src/config/schema.js';

/**
 * A BackendSet from compact specs, for strategy tables: "name:weight" with
 * prefixes ! (down), ~ (draining), ^ (backup) and suffix "@active/cap" for
 * open sessions against max_connections ("a:1@2/2" is at its cap).
 */
export function setFrom(
  specs: string[],
  allDown: AllDownPolicy = 'try-all',
): { set: BackendSet; name: Map<unknown, string> } {
  const parsed = specs.map((s) => {
    const m = /^([!~^]*)([a-z]+):(\d+)(?:@(\d+)\/(\d+))?$/.exec(s);
    if (!m) throw new Error(`bad spec ${s}`);
    return {
      flags: m[1] as string,
      name: m[2] as string,
      weight: Number(m[3]),
      active: Number(m[4] ?? 0),
      cap: Number(m[5] ?? 0),
    };
  });
  const set = new BackendSet(
    parsed.map((p, i) =>
      backendConfig(9000 + i, {
        weight: p.weight,
        backup: p.flags.includes('^'),
        maxConnections: p.cap,
      }),
    ),
    { allDown, fall: 1, rise: 1, passiveOnly: false, trialBackoffMs: 1000 },
  );
  const name = new Map<unknown, string>();
  parsed.forEach((p, i) => {
    const b = set.all[i];
    if (!b) return;
    name.set(b, p.name);
    writable(b).active = p.active;
    if (p.flags.includes('!')) set.markDown(b, 'test');
    if (p.flags.includes('~')) set.setDraining(b.address, true);
  });
  return { set, name };
}

export function backendConfig(port: number, extra: Partial<BackendConfig> = {}): BackendConfig {
  return {
    address: `127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    weight: 1,
    backup: false,
    maxConnections: 0,
    maxRate: 0,
    slowStartMs: 0,
    ...extra,
  };
}

/** A BackendSet over these backend configs with test defaults (try-all, fall and rise of 1). */
export function setOf(configs: BackendConfig[], follower: Follower | null = null): BackendSet {
  return new BackendSet(
    configs,
    { allDown: 'try-all', fall: 1, rise: 1, passiveOnly: false, trialBackoffMs: 1000 },
    { follower },
  );
}

/** mulberry32: a small seeded PRNG, so random-two tests are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A clock a test moves by hand (see src/clock.ts). */
export class ManualClock {
  constructor(private t = 1000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A test's hand on a backend's fields (outside src/backend/ a backend is read-only). */
export function writable(b: Backend): BackendEntry {
  return entryOf(b);
}
