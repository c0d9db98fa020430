import { Socket } from 'node:net';
import type { ListenAddress } from '../config/listen.js';
import type { PassedSockets } from '../lifecycle/passed-sockets.js';
import { socketHandle } from '../lifecycle/socket-handle.js';
import type { Logger } from '../logger.js';
import { noop } from '../noop.js';

/**
 * The primary's hold on sockets passed to the process (an upgrade's,
 * systemd's): one handle each, opened once and kept for the life of the
 * process, and sent to every worker that starts (a restarted one too), which
 * listens on its own copy. Through node:cluster instead, the shared handle
 * would close with the last worker and the descriptor with it.
 */
export class HeldSockets {
  /** Listen address → the Socket that owns the handle (never read: it only keeps the descriptor open). */
  private readonly held = new Map<string, Socket>();

  constructor(
    private readonly sockets: PassedSockets,
    private readonly log: Logger,
  ) {}

  /**
   * The handles for the passed sockets among `listens` (taken now if not
   * yet). `strict` (at start): one that was not passed throws its
   * ListenError; otherwise (a reload, a worker restart) it is logged, and
   * the worker that cannot listen says so too.
   */
  forListens(listens: readonly ListenAddress[], strict = false): Map<string, object> {
    const out = new Map<string, object>();
    for (const l of listens) {
      const s = this.held.get(l.address) ?? this.hold(l, strict);
      const h = s && socketHandle(s);
      if (h) out.set(l.address, h);
    }
    return out;
  }

  private hold(l: ListenAddress, strict: boolean): Socket | null {
    try {
      const fd = this.sockets.take(l.address, l);
      if (fd === null) return null;
      const s = new Socket({ fd, readable: false, writable: false });
      s.on('error', noop);
      this.held.set(l.address, s);
      return s;
    } catch (err) {
      if (strict) throw err;
      this.log.error({ listen: l.address, reason: (err as Error).message }, 'passed socket');
      return null;
    }
  }
}
