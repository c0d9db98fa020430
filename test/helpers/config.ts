import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type Config, parseConfig } from '../../src/config/schema.js';

/** A config from a raw object, as a test writes it (listen ports may be 0). */
export const cfgOf = (raw: Record<string, unknown>): Config =>
  parseConfig(raw, { source: '<test>', allowEphemeralListen: true });

/** A fresh directory under the system's temp dir, removed after the test. */
export function tempDir(t: TestContext, prefix = 'blitz-lb-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
