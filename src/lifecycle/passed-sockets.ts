import { closeSync } from 'node:fs';
import type { ListenAddress } from '../config/listen.js';
import { ListenError } from '../errors.js';

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3;
/**
 * Set by an upgrading blitz-lb for its new process (see upgrade.ts): JSON
 * `{ "report": fd, "sockets": { "listen address": fd } }`, the descriptor
 * to write a start-up failure to and the listening sockets it hands over.
 * Admin's socket is keyed `admin ADDRESS`.
 */
export const UPGRADE_ENV = 'BLITZ_LB_UPGRADE';

export interface UpgradeHandOver {
  report: number;
  sockets: Record<string, number>;
}

/** The admin listener's key among passed sockets (service keys are their listen addresses). */
export function adminKey(address: string): string {
  return `admin ${address}`;
}

/**
 * The key of the n-th socket handed over for one listen address: with
 * workers on SO_REUSEPORT each worker has its own, and an upgrade hands over
 * every one ("127.0.0.1:80", "127.0.0.1:80 #2", ...).
 */
export function socketKey(key: string, n: number): string {
  return n <= 1 ? key : `${key} #${n}`;
}

/**
 * Where a listener listens instead of binding: a descriptor, or a raw handle
 * a cluster primary sent; a list when it accepts on several sockets of the
 * same address (see Listener's `extra`).
 */
export type ListenOn = number | object | (number | object)[];

/** What Service.bind asks for a listen address's passed socket (null: bind it). */
export interface SocketSource {
  take(key: string, listen?: ListenAddress): ListenOn | null;
}

/**
 * Listening sockets this process was given instead of binding them: by an
 * upgrading blitz-lb (UPGRADE_FDS_ENV), by systemd socket activation
 * (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) or as a bare descriptor
 * ("fd:N"). Each is taken at most once: a listener that is closed (a
 * reload removed its service) closes the descriptor, and the same address
 * bound later is bound afresh.
 */
export class PassedSockets implements SocketSource {
  private readonly taken = new Set<number>();

  constructor(
    /** Handed over by an upgrade: listen address (or adminKey) → descriptor. */
    private readonly handedOver: ReadonlyMap<string, number>,
    /** systemd's, by FileDescriptorName, in the order passed (names may repeat). */
    private readonly systemd: ReadonlyMap<string, number[]>,
  ) {}

  static none(): PassedSockets {
    return new PassedSockets(new Map(), new Map());
  }

  /**
   * Reads (and removes, as sd_listen_fds(1) does, so no child process takes
   * them for its own) the variables that describe passed sockets. systemd's
   * count only when LISTEN_PID is this process.
   */
  static fromEnv(env: NodeJS.ProcessEnv, pid: number): PassedSockets {
    const handed = new Map<string, number>();
    for (const [k, v] of Object.entries(readHandOver(env)?.sockets ?? {}))
      if (isFd(v)) handed.set(k, v);
    const systemd = new Map<string, number[]>();
    const count = Number(env.LISTEN_FDS);
    if (env.LISTEN_PID === String(pid) && Number.isInteger(count) && count > 0) {
      const names = (env.LISTEN_FDNAMES ?? '').split(':');
      for (let i = 0; i < count; i++) {
        const name = names[i] || 'unknown';
        const list = systemd.get(name) ?? [];
        list.push(SD_LISTEN_FDS_START + i);
        systemd.set(name, list);
      }
    }
    // UPGRADE_ENV stays until the process serves (successor.ts reads its report descriptor).
    for (const k of ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID']) delete env[k];
    return new PassedSockets(handed, systemd);
  }

  /**
   * The descriptor to listen on for `listen` (or an admin key), or null to
   * bind it. Throws ListenError for "systemd:NAME" / "fd:N" that nothing
   * was passed for, or whose descriptor is taken already.
   */
  take(key: string, listen?: ListenAddress): number | number[] | null {
    const handed = this.handedOver.get(key);
    if (handed !== undefined && !this.taken.has(handed)) {
      // An upgrade from workers on SO_REUSEPORT: every worker's socket, all accepted on here.
      const more = this.handedSeries(key).slice(1);
      if (more.length === 0) return this.mark(handed);
      return [handed, ...more].map((fd) => this.mark(fd));
    }
    const passed = listen?.passed;
    if (!passed) return null;
    if (passed.kind === 'fd') {
      if (this.taken.has(passed.fd))
        throw new ListenError(`listen ${key}: descriptor ${passed.fd} is in use already`);
      return this.mark(passed.fd);
    }
    const fd = this.systemd.get(passed.name)?.find((n) => !this.taken.has(n));
    if (fd === undefined) {
      const known = [...this.systemd.keys()];
      throw new ListenError(
        `listen ${key}: systemd passed no socket named "${passed.name}"${
          known.length > 0
            ? ` (it passed: ${known.join(', ')})`
            : ' (no LISTEN_FDS for this process: start it from a .socket unit, or see FileDescriptorName=)'
        }`,
      );
    }
    return this.mark(fd);
  }

  /**
   * Closes the sockets an upgrade handed over that this process does not
   * serve (the new config dropped their service or moved the admin server):
   * left open, clients would queue on them unanswered instead of being
   * refused. systemd's are its own to keep.
   */
  closeUnused(): string[] {
    const closed: string[] = [];
    for (const [key, fd] of this.handedOver) {
      if (this.taken.has(fd)) continue;
      try {
        closeSync(fd);
        this.taken.add(fd);
        closed.push(key);
      } catch {
        // Not open (closed already): nothing to do.
      }
    }
    return closed;
  }

  /** The descriptors handed over for `key`: `key`, `key #2`, ... while they follow on. */
  handedSeries(key: string): number[] {
    const out: number[] = [];
    for (let n = 1; ; n++) {
      const fd = this.handedOver.get(socketKey(key, n));
      if (fd === undefined || this.taken.has(fd)) return out;
      out.push(fd);
    }
  }

  /** Takes one handed-over descriptor by its exact key (a cluster primary's, see HeldSockets). */
  takeHanded(key: string): number | null {
    const fd = this.handedOver.get(key);
    return fd === undefined || this.taken.has(fd) ? null : this.mark(fd);
  }

  private mark(fd: number): number {
    this.taken.add(fd);
    return fd;
  }
}

/** What an upgrading blitz-lb handed this process (UPGRADE_ENV); null: it was not started by one. */
export function readHandOver(env: NodeJS.ProcessEnv): UpgradeHandOver | null {
  const raw = env[UPGRADE_ENV];
  if (!raw) return null;
  try {
    const h = JSON.parse(raw) as Partial<UpgradeHandOver>;
    return { report: isFd(h.report) ? h.report : -1, sockets: h.sockets ?? {} };
  } catch {
    return null;
  }
}

function isFd(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 3;
}

/**
 * A cluster worker's given sockets: the handles its primary holds for it
 * (see cluster/held-sockets.ts: passed sockets, or its slot's own socket
 * left by the worker before it), sent before `init`. Each address's are
 * listened on once; a worker restarted later gets them again.
 */
export class HandedSockets implements SocketSource {
  private readonly taken = new Set<string>();

  constructor(private readonly handles: ReadonlyMap<string, readonly object[]>) {}

  take(key: string, listen?: ListenAddress): ListenOn | null {
    const list = this.handles.get(key);
    if (list && list.length > 0 && !this.taken.has(key)) {
      this.taken.add(key);
      return list.length === 1 ? (list[0] as object) : [...list];
    }
    if (listen?.passed)
      throw new ListenError(`listen ${key}: the primary holds no socket for it (see its log)`);
    return null;
  }
}
