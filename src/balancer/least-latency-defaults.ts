/** latency_decay's default, in a leaf the config may import: Finagle's and Linkerd's 10 s. */
export const DEFAULT_LATENCY_DECAY_MS = 10_000;
