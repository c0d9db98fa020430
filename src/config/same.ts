import { isDeepStrictEqual } from 'node:util';

/** Whether two validated config values (frozen plain data) are the same: the one test a reload uses to skip what did not change. */
export function sameConfig(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}
