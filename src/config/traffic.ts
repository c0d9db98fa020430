import { durationOf, type Problems, type Table } from './fields.js';
import { MAX_TIMER_MS } from './limits.js';
import { MAX_RATE, parseRate, RATE_PATTERN } from './rate.js';
import type { AnyOfSpec, DurationSpec, Fields } from './spec.js';

/**
 * A service's per-side timeouts and bandwidth limits (HAProxy timeout
 * client / server / tunnel and bwlim-in / bwlim-out, nginx proxy_upload_rate /
 * proxy_download_rate): their keys, and their checks. All off by default, so a
 * service that names none of them behaves as before they existed.
 */

function sideTimeout(doc: string): DurationSpec {
  return { kind: 'duration', default: 0, min: 0, max: MAX_TIMER_MS, doc };
}

function rate(doc: string): AnyOfSpec {
  return {
    kind: 'anyOf',
    default: 0,
    options: [
      { kind: 'integer', min: 0, max: MAX_RATE, doc: 'Bytes a second (0: no limit)' },
      {
        kind: 'string',
        pattern: RATE_PATTERN,
        doc: 'A rate with a unit: "10MiB", "500KB" (KB, MB, GB: 1000; KiB, MiB, GiB: 1024)',
      },
    ],
    doc,
  };
}

export const TRAFFIC_FIELDS = {
  client_timeout: sideTimeout(
    'The client sent nothing for this long: the session is reset, "client-timeout" (0: off; not after its FIN)',
  ),
  server_timeout: sideTimeout(
    'The backend sent nothing for this long: the session is reset, "server-timeout" (0: off; not after its FIN)',
  ),
  tunnel_timeout: sideTimeout(
    'Once both sides have sent a byte, replaces client_timeout, server_timeout and idle_timeout: both silent this long closes the session, "tunnel-timeout" (0: off)',
  ),
  upload_rate: rate('Client-to-backend bytes a second, per session (0: no limit)'),
  download_rate: rate('Backend-to-client bytes a second, per session (0: no limit)'),
  upload_rate_per_source: rate(
    'Client-to-backend bytes a second, shared by every session of one client address (0: no limit)',
  ),
  download_rate_per_source: rate(
    'Backend-to-client bytes a second, shared by every session of one client address (0: no limit)',
  ),
} satisfies Fields;

/** What parseTraffic adds to a ServiceConfig (see config/types.ts). */
export interface TrafficConfig {
  /** The client silent this long ends the session (0: off). */
  readonly clientTimeoutMs: number;
  /** The backend silent this long ends the session (0: off). */
  readonly serverTimeoutMs: number;
  /** Once both sides have spoken: both silent this long, in place of the three above (0: off). */
  readonly tunnelTimeoutMs: number;
  /** Bytes a second, per session, client to backend (0: no limit). */
  readonly uploadRate: number;
  readonly downloadRate: number;
  /** Bytes a second shared by one client address's sessions (0: no limit; with workers, each worker's share). */
  readonly uploadRatePerSource: number;
  readonly downloadRatePerSource: number;
}

function rateOf(v: unknown, path: string, p: Problems): number {
  if (v === undefined) return 0;
  const r = parseRate(v);
  if (typeof r === 'number') return r;
  p.add(path, r.error);
  return 0;
}

export function parseTraffic(raw: Table, path: string, p: Problems): TrafficConfig {
  const f = TRAFFIC_FIELDS;
  return {
    clientTimeoutMs: durationOf(f.client_timeout, raw.client_timeout, `${path}.client_timeout`, p),
    serverTimeoutMs: durationOf(f.server_timeout, raw.server_timeout, `${path}.server_timeout`, p),
    tunnelTimeoutMs: durationOf(f.tunnel_timeout, raw.tunnel_timeout, `${path}.tunnel_timeout`, p),
    uploadRate: rateOf(raw.upload_rate, `${path}.upload_rate`, p),
    downloadRate: rateOf(raw.download_rate, `${path}.download_rate`, p),
    uploadRatePerSource: rateOf(raw.upload_rate_per_source, `${path}.upload_rate_per_source`, p),
    downloadRatePerSource: rateOf(
      raw.download_rate_per_source,
      `${path}.download_rate_per_source`,
      p,
    ),
  };
}
