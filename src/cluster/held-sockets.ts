import { Socket } from 'node:net';
import type { ListenAddress } from '../config/listen.js';
import { type PassedSockets, socketKey } from '../lifecycle/passed-sockets.js';
import { socketHandle } from '../lifecycle/socket-handle.js';
import type { Logger } from '../logger.js';
import { noop } from '../noop.js';

/** A raw handle received over IPC or taken from a Socket: closing it closes this process's copy only. */
function closeHandle(h: object): void {
  (h as { close?: () => void }).close?.();
}

/**
 * The primary's hold on listening sockets, so none closes while a worker is
 * away and each outlives the worker that listens on it:
 *
 * - Sockets passed to the process (an upgrade's, systemd's): opened once and
 *   kept for the life of the process, sent to every worker that starts.
 *   One socket for an address is shared by every worker; several (handed
 *   over by a balancer whose workers each had their own) are dealt out by
 *   slot, every socket to some worker.
 * - Each worker's own SO_REUSEPORT socket (`store`), a copy sent by the
 *   worker once it listens. A worker that dies leaves its socket open here,
 *   still in the port's group: clients the kernel queued on it wait (not
 *   reset) and the slot's next worker listens on the same socket. An upgrade
 *   hands over every slot's socket.
 */
export class HeldSockets {
  /** Listen address → the Sockets that own the passed descriptors (in order; never read). */
  private readonly passed = new Map<string, Socket[]>();
  /** Slot → listen address → the raw handle of that slot's worker's own socket. */
  private readonly own = new Map<number, Map<string, object>>();

  constructor(
    private readonly sockets: PassedSockets,
    private readonly log: Logger,
  ) {}

  /** At start: a listen address whose passed socket is missing throws its ListenError. */
  check(listens: readonly ListenAddress[]): void {
    for (const l of listens) this.passedFor(l, true);
  }

  /**
   * What worker `slot` of `count` listens on instead of binding, by listen
   * address: passed sockets (its share), or its slot's own socket held from
   * the worker before it. A list when it is given several for one address.
   */
  forSlot(listens: readonly ListenAddress[], slot: number, count: number): Map<string, object[]> {
    const out = new Map<string, object[]>();
    for (const l of listens) {
      const passed = this.passedFor(l, false).map((s) => socketHandle(s) as object);
      if (passed.length === 1) out.set(l.address, passed);
      else if (passed.length > 1) {
        const mine = passed.filter((_, j) => j % count === slot - 1);
        // More workers than sockets: this one shares a socket with another worker.
        out.set(l.address, mine.length > 0 ? mine : [passed[(slot - 1) % passed.length] as object]);
      } else {
        const h = this.own.get(slot)?.get(l.address);
        if (h) out.set(l.address, [h]);
      }
    }
    return out;
  }

  /** A worker's copy of the socket it listens on for `address`; a passed address needs none. */
  store(slot: number, address: string, handle: object): void {
    if (this.passed.has(address)) {
      closeHandle(handle);
      return;
    }
    let m = this.own.get(slot);
    if (!m) {
      m = new Map();
      this.own.set(slot, m);
    }
    const old = m.get(address);
    m.set(address, handle);
    if (old && old !== handle) closeHandle(old);
  }

  /** After a reload: the workers' sockets of addresses no longer served are let go (their listeners closed). */
  prune(addresses: ReadonlySet<string>): void {
    for (const m of this.own.values())
      for (const [address, h] of m)
        if (!addresses.has(address)) {
          m.delete(address);
          closeHandle(h);
        }
  }

  /** At stop: the workers' sockets close with the workers' listeners, so new clients are refused. */
  releaseOwn(): void {
    for (const m of this.own.values()) for (const h of m.values()) closeHandle(h);
    this.own.clear();
  }

  /**
   * Every socket of `listens`, for an upgrade's new process: key socketKey(address, n),
   * the passed ones in order, else each slot's own, slot 1 first. Missing: an address
   * no worker sent (with NODE_CLUSTER_SCHED_POLICY=rr a worker holds no real socket).
   */
  all(listens: readonly ListenAddress[]): { sockets: Map<string, object>; missing: string[] } {
    const sockets = new Map<string, object>();
    const missing: string[] = [];
    for (const l of listens) {
      const passed = this.passedFor(l, false).map((s) => socketHandle(s) as object);
      const own = [...this.own.keys()]
        .sort((a, b) => a - b)
        .flatMap((slot) => this.own.get(slot)?.get(l.address) ?? []);
      const list = passed.length > 0 ? passed : own;
      if (list.length === 0) missing.push(l.address);
      for (const [i, h] of list.entries()) sockets.set(socketKey(l.address, i + 1), h);
    }
    return { sockets, missing };
  }

  /** The Sockets holding the passed descriptors for `l` (taken now if not yet). */
  private passedFor(l: ListenAddress, strict: boolean): Socket[] {
    const held = this.passed.get(l.address);
    if (held) return held;
    try {
      const series = this.sockets.handedSeries(l.address);
      const fds =
        series.length > 0
          ? series.map((_, i) => this.sockets.takeHanded(socketKey(l.address, i + 1)) as number)
          : [this.sockets.take(l.address, l)].flat().filter((fd): fd is number => fd !== null);
      if (fds.length === 0) return [];
      const list = fds.map((fd) => {
        const s = new Socket({ fd, readable: false, writable: false });
        s.on('error', noop);
        return s;
      });
      this.passed.set(l.address, list);
      return list;
    } catch (err) {
      if (strict) throw err;
      this.log.error({ listen: l.address, reason: (err as Error).message }, 'passed socket');
      return [];
    }
  }
}
