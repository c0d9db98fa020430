import type { Shaper } from './bandwidth.js';
import type { MirrorTap } from './mirror.js';
import { SessionClient } from './session-client.js';

/**
 * What a session's bytes carry beside the splice (Session extends it): per
 * side, whether a chunk crossed since the idle sweep last looked, since when
 * the sweep has seen none, and who has spoken (side-timeouts.ts); its
 * bandwidth shaper; its mirror tap. Plain fields, not an object of their own,
 * since the data listeners set them on every chunk.
 */
export class SessionTraffic extends SessionClient {
  /** Where a copy of the client's bytes goes (a sampled session of a service with [mirror]); null: none. */
  mirror: MirrorTap | null = null;
  // Per side (see side-timeouts.ts).
  clientBusy = false;
  backendBusy = false;
  clientQuietSince = 0;
  backendQuietSince = 0;
  spoke = 0;
  /** Its bandwidth limits, given by the host at sessionReady; null (the common case) when none apply. */
  shaper: Shaper | null = null;
}
