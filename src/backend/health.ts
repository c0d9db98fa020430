import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import { Histogram } from '../histogram.js';
import type { Backend } from './backend.js';
import { type ConnectFailure, probeCauseOf } from './causes.js';
import { type DialJudge, type Follower, reportTo } from './follow.js';
import type { BackendSetEvents, BackendSetOptions } from './set-types.js';
import { LocalVerdicts } from './verdicts.js';

/** Probe durations: 0.5 ms to 10 s. */
const PROBE_BUCKETS = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * The health half of the backend state owner (BackendSet extends it): what
 * probes, the agent, live dials and HTTP answers report, and the up/down
 * marks they lead to. The verdicts themselves are decided in verdicts.ts (or
 * by the primary a cluster worker follows, follow.ts).
 */
export abstract class BackendHealth extends EventEmitter<BackendSetEvents> {
  protected readonly opts: BackendSetOptions;
  protected readonly verdicts: LocalVerdicts;
  private readonly judge: DialJudge;
  protected readonly clock: Clock;
  /** How long probes took, successes and failures alike (read by /metrics). */
  readonly probeSeconds = new Histogram(PROBE_BUCKETS);

  constructor(opts: BackendSetOptions, clock: Clock, follower: Follower | null) {
    super();
    this.clock = clock;
    this.opts = { ...opts };
    this.verdicts = new LocalVerdicts(this.opts, {
      markUp: (b) => this.markUp(b),
      markDown: (b, reason) => this.markDown(b, reason),
      changed: () => this.commit(),
    });
    this.judge = follower ? reportTo(follower) : this.verdicts;
  }

  /** A backend's state changed: recompute the candidates and tell followers. */
  protected abstract commit(): void;

  /** An active probe's verdict. */
  reportProbe(b: Backend, ok: boolean, detail: string, latencyMs: number): void {
    const first = b.lastCheck === null;
    b.lastCheck = { ok, detail, latencyMs, at: Date.now() };
    this.probeSeconds.observe(latencyMs / 1000);
    if (!ok) {
      b.lastFailure = { detail, at: b.lastCheck.at };
      b.probeFailures[probeCauseOf(detail)]++;
    }
    if (!b.removed && !b.checksPaused) this.verdicts.probe(b, ok, detail, first);
  }

  /** The agent check's last contact (see health/agent.ts). */
  reportAgent(b: Backend, ok: boolean, detail: string): void {
    b.lastAgent = { ok, detail, at: Date.now() };
  }

  /**
   * The agent's health word. `reason` set: down now and held down, probes or
   * not, until released. null: released; back up at once unless the last
   * probe failed (then probes bring it back after `rise`, as usual).
   */
  holdDown(b: Backend, reason: string | null): void {
    if (b.removed) return;
    if (reason !== null) {
      b.agentDown = true;
      this.markDown(b, reason);
      // No half-open trials (health kind "none") while the agent holds it down.
      this.verdicts.clearTrial(b);
      return;
    }
    if (!b.agentDown) return;
    b.agentDown = false;
    if (b.lastCheck === null || b.lastCheck.ok) this.markUp(b);
  }

  /**
   * A live dial (or pool refill) connected. It clears the failure streak of a
   * healthy backend, and closes the circuit after a half-open trial; it never
   * brings back a backend that active probes hold down.
   */
  reportDialSuccess(b: Backend): void {
    this.judge.succeeded(b);
  }

  /** A live dial (or pool refill) failed: a passive health signal, counted like a probe failure. */
  recordDialFailure(b: Backend, failure: ConnectFailure): void {
    b.dialFailuresTotal++;
    b.dialFailures[failure.kind]++;
    this.judge.failed(b, failure);
  }

  /** A dial to `b` failed on the balancer's own resources (EMFILE…): counted, never held against it. */
  recordLocalDialFailure(b: Backend): void {
    b.dialFailures.local++;
    this.abandonTrial(b);
  }

  /**
   * An HTTP request got a 5xx answer (passive_http_5xx): a passive health
   * failure like a failed dial, without counting as one in dial_failures_total.
   */
  recordHttpFailure(b: Backend, cause: string): void {
    this.judge.failed(b, { kind: 'other', detail: cause });
  }

  /**
   * A trial dial ended with no verdict (its client left, or the failure was
   * the balancer's own): the backend is half-open again for the next one.
   */
  abandonTrial(b: Backend): void {
    if (!b.halfOpen || !b.trialInFlight) return;
    b.trialInFlight = false;
    this.commit();
  }

  /** The dialer picked a half-open backend: it is the one trial; keep others off it until the verdict. */
  beginTrial(b: Backend): void {
    if (!b.halfOpen || b.trialInFlight) return;
    b.trialInFlight = true;
    this.commit();
  }

  markDown(b: Backend, reason: string): void {
    if (!b.healthy) return;
    b.healthy = false;
    b.downReason = reason;
    b.consecutiveSuccesses = 0;
    healthChanged(b, false);
    if (this.opts.passiveOnly) this.verdicts.openCircuit(b);
    this.commit();
    this.emit('down', b, reason);
  }

  markUp(b: Backend): void {
    if (b.healthy || b.agentDown) return;
    b.healthy = true;
    b.downReason = null;
    b.consecutiveFailures = 0;
    healthChanged(b, true);
    b.upSince = this.clock.now();
    this.verdicts.clearTrial(b);
    this.commit();
    this.emit('up', b);
  }
}

/** When health changed, and the down time it ends (for /metrics). */
export function healthChanged(b: Backend, up: boolean): void {
  const now = Date.now();
  b.stateChangedAt = now;
  if (up && b.downSince > 0) {
    b.downMsBefore += now - b.downSince;
    b.downSince = 0;
  } else if (!up) b.downSince = now;
}
