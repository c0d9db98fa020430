import type { ConnectFailure } from './backend/causes.js';
import type { Clock } from './clock.js';
import { LOCAL_ERRNO } from './errno.js';
import { LogThrottle } from './log-throttle.js';
import type { Logger } from './logger.js';

/** One service's count of its own resource errors, by code, with a rate-limited log line. */
export class LocalErrors {
  /** By errno code; read by metrics at scrape time. */
  readonly counts: Record<string, number> = {};
  private readonly throttle: LogThrottle;

  constructor(
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.throttle = new LogThrottle(5000, clock);
  }

  /**
   * True when `failure` (a failed connect, or a probe's detail text) is the
   * balancer's own: it is counted and logged here, and the caller must not
   * count it against the backend.
   */
  claim(
    failure: ConnectFailure | string,
    during: 'dial' | 'pool refill' | 'probe',
    backend: string,
  ): boolean {
    const cause = typeof failure === 'string' ? failure : failure.detail;
    if (typeof failure === 'string' ? !LOCAL_ERRNO.has(cause) : failure.kind !== 'local')
      return false;
    this.counts[cause] = (this.counts[cause] ?? 0) + 1;
    const held = this.throttle.pass();
    if (held >= 0)
      this.log.error(
        { code: cause, during, backend, alsoLocal: held },
        'the balancer is out of a local resource (not counted against the backend)',
      );
    return true;
  }
}
