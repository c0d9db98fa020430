import { type Backend, effectiveWeight } from '../backend/backend.js';
import type { Rng } from './random-two.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/**
 * The cost of a backend that has sessions open but no latency measured yet:
 * tried once, then passed over until its first sample arrives, so a new
 * backend is not flooded before anything is known of it (Finagle's
 * `Penalty`; Linkerd's tower gives such endpoints a default RTT instead).
 */
export const UNMEASURED_PENALTY = 1e12;

/** The latency estimate of one backend: a peak-sensitive EWMA (ms) and when it was last touched. */
class Peak {
  cost = 0;
  stamp = 0;
  sampled = false;
}

/**
 * least-latency: power of two choices over a peak-EWMA cost, as Finagle's
 * `p2cPeakEwma` and Linkerd's balancer (tower's `PeakEwma`) do it
 * (twitter/finagle, finagle-core/.../loadbalancer/PeakEwma.scala;
 * docs.rs/tower, `tower::load::peak_ewma`).
 *
 * Each backend keeps an estimate of its latency: a sample above it replaces
 * it at once (the "peak"), a sample below it moves it by 1 - e^(-dt/decay)
 * (an EWMA over unevenly spaced samples), and reading it decays it toward
 * zero by e^(-dt/decay), so a backend not measured for a while looks better
 * and is tried again. A backend's cost is estimate x (open sessions + 1) /
 * effective weight: weights and slow start scale it, so a ramping backend
 * costs up to 10x more. A backend with no sample costs 0 while it has no
 * session (it is tried) and a penalty while one is open (see UNMEASURED_PENALTY).
 *
 * A pick draws two distinct eligible backends uniformly and takes the
 * cheaper (the first drawn on a tie). Not the cheapest of all: samples arrive
 * after the picks they would have changed, and each cluster worker measures
 * alone, so a strict minimum sends every new session of a burst (and of every
 * worker) to the same backend; two random choices spread them while still
 * avoiding the slow one, which loses every comparison it is drawn into.
 *
 * Samples come through `observe`: the connect time of every fresh connect
 * to a backend (the dialer's, the warm pool's refills, the HTTP client's) and,
 * for lb.request(), the time to the answer's headers. A warm-pool hit is no
 * sample (no connect happened); the refill that replaces it is one.
 * Allocation-free per pick; an estimate is allocated once per backend.
 */
export class LeastLatency implements Strategy {
  private cands: readonly Backend[] = [];
  /** Every backend's estimate, kept while the backend object lives (a candidate change keeps them). */
  private readonly byBackend = new WeakMap<Backend, Peak>();

  constructor(
    /** The decay time constant (ms): latency_decay. */
    private readonly decayMs: number,
    private readonly rng: Rng = Math.random,
  ) {}

  update(candidates: readonly Backend[]): void {
    this.cands = candidates;
    for (const b of candidates) this.peakOf(b);
  }

  observe(b: Backend, ms: number, now: number): void {
    const p = this.peakOf(b);
    const rtt = Math.max(ms, 0);
    if (!p.sampled) {
      p.sampled = true;
      p.cost = rtt;
    } else if (rtt > p.cost) {
      p.cost = rtt;
    } else {
      const w = Math.exp(-Math.max(now - p.stamp, 0) / this.decayMs);
      p.cost = p.cost * w + rtt * (1 - w);
    }
    p.stamp = now;
  }

  /** The current estimate for `b` (ms), decayed to `now`; null before its first sample. For the admin view and tests. */
  estimate(b: Backend, now: number): number | null {
    const p = this.byBackend.get(b);
    if (!p?.sampled) return null;
    return p.cost * Math.exp(-Math.max(now - p.stamp, 0) / this.decayMs);
  }

  pick(ctx: PickContext): Backend | undefined {
    const c = this.cands;
    const skipTried = mustSkipTried(ctx, c);
    let m = 0;
    for (let i = 0; i < c.length; i++) if (eligible(ctx, c[i] as Backend, skipTried)) m++;
    if (m === 0) return undefined;
    const first = Math.floor(this.rng() * m);
    if (m === 1) return this.nth(ctx, skipTried, 0);
    let second = Math.floor(this.rng() * (m - 1));
    if (second >= first) second++;
    const a = this.nth(ctx, skipTried, first);
    const b = this.nth(ctx, skipTried, second);
    return this.cost(b, ctx.now) < this.cost(a, ctx.now) ? b : a;
  }

  /** The k-th eligible candidate. */
  private nth(ctx: PickContext, skipTried: boolean, k: number): Backend {
    const c = this.cands;
    for (let i = 0; i < c.length; i++) {
      const b = c[i] as Backend;
      if (!eligible(ctx, b, skipTried)) continue;
      if (k-- === 0) return b;
    }
    // Unreachable: k < the number of eligible candidates.
    return c[0] as Backend;
  }

  private cost(b: Backend, now: number): number {
    const p = this.byBackend.get(b) as Peak;
    const w = effectiveWeight(b, now);
    if (!p.sampled) return b.active === 0 ? 0 : (UNMEASURED_PENALTY + b.active) / w;
    // Reading decays the estimate toward zero (Finagle's get() observes 0).
    const dt = now - p.stamp;
    if (dt > 0) {
      p.cost *= Math.exp(-dt / this.decayMs);
      p.stamp = now;
    }
    return (p.cost * (b.active + 1)) / w;
  }

  private peakOf(b: Backend): Peak {
    let p = this.byBackend.get(b);
    if (p === undefined) {
      p = new Peak();
      this.byBackend.set(b, p);
    }
    return p;
  }
}
