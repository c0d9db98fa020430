/**
 * A fixed-bucket latency histogram: plain numbers, no allocation per
 * observation, read by metrics and reports at scrape time.
 */
export class Histogram {
  /** Upper bounds in seconds (Prometheus `le`), ascending; the last bucket is +Inf. */
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sum += seconds;
  }
}

/** Accept-to-backend-ready buckets: 25 µs to 5 s. */
export const CONNECT_BUCKETS = Object.freeze([
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5, 5,
]);
