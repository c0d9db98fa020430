/**
 * Monotonic milliseconds (performance.now() by default). Everything that
 * measures time takes one, passed in from cli.ts or LoadBalancer, so a test
 * can move it instead of waiting (house rule 5). Wall-clock time is used only
 * for timestamps shown to people.
 */
export interface Clock {
  now(): number;
}

export const monotonicClock: Clock = Object.freeze({ now: () => performance.now() });
