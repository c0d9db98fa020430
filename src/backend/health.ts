import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import { Histogram } from '../histogram.js';
import { type Backend, type BackendEntry, entryOf } from './backend.js';
import type { ConnectFailure, ProbeCause } from './causes.js';
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

  /** An active probe's verdict; `cause`: a failure's class, given by the probe (absent: a reply it did not like). */
  reportProbe(
    backend: Backend,
    ok: boolean,
    detail: string,
    latencyMs: number,
    cause: ProbeCause = 'bad-reply',
  ): void {
    const b = entryOf(backend);
    const first = b.lastCheck === null;
    b.lastCheck = { ok, detail, latencyMs, at: Date.now() };
    this.probeSeconds.observe(latencyMs / 1000);
    if (!ok) {
      b.lastFailure = { detail, at: b.lastCheck.at };
      b.probeFailures[cause]++;
    }
    if (!b.removed && !b.checksPaused) this.verdicts.probe(b, ok, detail, first);
  }

  /** The agent check's last contact (see health/agent.ts). */
  reportAgent(backend: Backend, ok: boolean, detail: string): void {
    const b = entryOf(backend);
    b.lastAgent = { ok, detail, at: Date.now() };
  }

  /**
   * The agent's health word. `reason` set: down now and held down, probes or
   * not, until released. null: released; back up at once unless the last
   * probe failed (then probes bring it back after `rise`, as usual).
   */
  holdDown(backend: Backend, reason: string | null): void {
    const b = entryOf(backend);
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
  reportDialSuccess(backend: Backend): void {
    const b = entryOf(backend);
    this.judge.succeeded(b);
  }

  /** A live dial (or pool refill) failed: a passive health signal, counted like a probe failure. */
  recordDialFailure(backend: Backend, failure: ConnectFailure): void {
    const b = entryOf(backend);
    b.dialFailuresTotal++;
    b.dialFailures[failure.kind]++;
    this.judge.failed(b, failure);
  }

  /** A dial to `b` failed on the balancer's own resources (EMFILE…): counted, never held against it. */
  recordLocalDialFailure(backend: Backend): void {
    const b = entryOf(backend);
    b.dialFailures.local++;
    this.abandonTrial(b);
  }

  /**
   * An HTTP request got a 5xx answer (passive_http_5xx): a passive health
   * failure like a failed dial, without counting as one in dial_failures_total.
   */
  recordHttpFailure(backend: Backend, cause: string): void {
    const b = entryOf(backend);
    this.judge.failed(b, { kind: 'other', detail: cause });
  }

  /**
   * A trial dial ended with no verdict (its client left, or the failure was
   * the balancer's own): the backend is half-open again for the next one.
   */
  abandonTrial(backend: Backend): void {
    const b = entryOf(backend);
    if (!b.trialInFlight) return;
    b.enter('half-open');
    this.commit();
  }

  /** The dialer picked a half-open backend: it is the one trial; keep others off it until the verdict. */
  beginTrial(backend: Backend): void {
    const b = entryOf(backend);
    if (b.phase !== 'half-open') return;
    b.enter('trial');
    this.commit();
  }

  markDown(backend: Backend, reason: string): void {
    const b = entryOf(backend);
    if (!b.healthy) return;
    b.enter('down');
    b.downReason = reason;
    b.consecutiveSuccesses = 0;
    healthChanged(b, false);
    if (this.opts.passiveOnly) this.verdicts.openCircuit(b);
    this.commit();
    this.emit('down', b, reason);
  }

  markUp(backend: Backend): void {
    const b = entryOf(backend);
    if (b.healthy || b.agentDown) return;
    b.enter('up');
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
export function healthChanged(b: BackendEntry, up: boolean): void {
  const now = Date.now();
  b.stateChangedAt = now;
  if (up && b.downSince > 0) {
    b.downMsBefore += now - b.downSince;
    b.downSince = 0;
  } else if (!up) b.downSince = now;
}
