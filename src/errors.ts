/**
 * Every error the balancer raises on purpose carries a stable `code`.
 * Callers branch on `code`, never on message text.
 */
export type LbErrorCode =
  | 'LB_ERR_CONFIG'
  | 'LB_ERR_LISTEN'
  | 'LB_ERR_NO_BACKEND'
  | 'LB_ERR_DIAL'
  | 'LB_ERR_UNKNOWN_SERVICE'
  | 'LB_ERR_UNKNOWN_BACKEND'
  | 'LB_ERR_DUPLICATE_BACKEND'
  | 'LB_ERR_STATE'
  | 'LB_ERR_INVALID_ARGUMENT'
  | 'LB_ERR_LIMIT'
  | 'LB_ERR_ABORTED'
  | 'LB_ERR_TIMEOUT'
  | 'LB_ERR_UPGRADE';

export class LbError extends Error {
  readonly code: LbErrorCode;
  constructor(code: LbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A config file that cannot be read, parsed or validated. */
export class ConfigError extends LbError {
  /** Every problem found, each already prefixed with the file and place. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('LB_ERR_CONFIG', problems.join('\n'));
    this.problems = problems;
  }
}

/** A TOML syntax error: one problem, with where it is and a plain reason (for `check --json`). */
export class ConfigSyntaxError extends ConfigError {
  constructor(
    problem: string,
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super([problem]);
  }
}

/** A listener that could not bind (port in use, permission, bad address). */
export class ListenError extends LbError {
  constructor(message: string, cause?: unknown) {
    super('LB_ERR_LISTEN', message, { cause });
  }
}

/** No backend could be chosen for a session (all down with all_down = "refuse", or none configured). */
export class NoBackendError extends LbError {
  constructor(service: string, why = 'no backend available') {
    super('LB_ERR_NO_BACKEND', `service ${service}: ${why}`);
  }
}

/** Every dial attempt for one session failed. `attempts` names each backend and its cause. */
export class DialError extends LbError {
  readonly attempts: readonly { backend: string; cause: string }[];
  constructor(service: string, attempts: readonly { backend: string; cause: string }[]) {
    const detail = attempts.map((a) => `${a.backend} (${a.cause})`).join(', ');
    super(
      'LB_ERR_DIAL',
      `service ${service}: all ${attempts.length} dial attempts failed: ${detail}`,
    );
    this.attempts = attempts;
  }
}

/** A bad argument to the library or admin API (a weight of 0, a negative max_rate…). */
export class InvalidArgumentError extends LbError {
  constructor(message: string) {
    super('LB_ERR_INVALID_ARGUMENT', message);
  }
}

/** Every backend is at its cap, and the session could not wait for a slot: the queue was full, or the wait ran out. */
export class LimitError extends LbError {
  constructor(
    service: string,
    readonly limit: 'queue-full' | 'queue-timeout',
  ) {
    super(
      'LB_ERR_LIMIT',
      limit === 'queue-full'
        ? `service ${service}: every backend is at its limit and the wait queue is full`
        : `service ${service}: no backend slot came free within queue_timeout`,
    );
  }
}

/** An HTTP request through lb.request() did not finish within its request_timeout. */
export class RequestTimeoutError extends LbError {
  constructor(
    service: string,
    readonly timeoutMs: number,
  ) {
    super('LB_ERR_TIMEOUT', `service ${service}: request not finished within ${timeoutMs}ms`);
  }
}
