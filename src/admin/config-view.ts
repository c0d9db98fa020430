import type { Config } from '../config/schema.js';

/** What a secret shows as: that one is set, never what it is. */
export const REDACTED = '(redacted)';

/**
 * GET /api/config: the config in force as the balancer holds it (every
 * default filled in; durations in ms), with secrets left out: the admin
 * tokens, private keys and the PEM text of certificate files (their file
 * names stay), a password in a discovery URL or the [cluster] Redis URL, and a login
 * probe's password.
 */
export function configView(config: Config): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => {
      if ((key === 'token' || key === 'readToken') && value !== null) return REDACTED;
      if (key === 'pem' && typeof value === 'string') return REDACTED;
      // A login probe's password (health.password).
      if (key === 'password' && typeof value === 'string') return REDACTED;
      if (key === 'url' && typeof value === 'string') return withoutPassword(value);
      // [cluster] redis = "redis://user:password@…"
      if (key === 'redis' && typeof value === 'string') return withoutPassword(value);
      return value;
    }),
  );
}

function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = REDACTED;
    return u.toString();
  } catch {
    return url;
  }
}
