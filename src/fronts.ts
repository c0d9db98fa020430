import { isFronted } from './config/sni.js';
import type { Logger } from './logger.js';
import type { Listener } from './proxy/listener.js';
import { Front, type FrontCounters, frontCounters } from './proxy/tls/front.js';
import type { Service } from './service.js';

/**
 * Where each listener's clients go: its service's sessions, or a front
 * (proxy/tls/front.ts) when services share the address or read the hello;
 * and the fronts' refusals by cause per listen address, kept across reloads.
 */
export class Fronts {
  private fronts: Front[] = [];
  private readonly counts = new Map<string, FrontCounters>();

  constructor(private readonly log: Logger) {}

  /** Clients refused before any service took them, per shared listen address. */
  get refusals(): ReadonlyMap<string, Readonly<FrontCounters>> {
    return this.counts;
  }

  /**
   * Points every listener at what takes its clients: a service's sessions
   * straight away (as ever, for a service that reads no hello), or a front
   * that reads the PROXY header and ClientHello and routes by SNI. Fronts are
   * rebuilt on each reload; a client in the middle of its hello finishes on
   * the old one.
   */
  wire(services: Iterable<Service>, accessLog: boolean): void {
    const groups = new Map<Listener, Service[]>();
    for (const svc of services) {
      const l = svc.boundListener;
      if (!l) continue;
      const g = groups.get(l);
      if (g) g.push(svc);
      else groups.set(l, [svc]);
    }
    const fronts: Front[] = [];
    for (const [l, svcs] of groups) {
      const one = svcs[0] as Service;
      if (svcs.length === 1 && !isFronted(one.cfg)) {
        l.handTo(one.listenerHost);
        continue;
      }
      const listen = one.cfg.listen.address;
      let counts = this.counts.get(listen);
      if (!counts) {
        counts = frontCounters();
        this.counts.set(listen, counts);
      }
      const f = new Front(
        listen,
        svcs.map((s) => s.frontTarget),
        counts,
        one.fds,
        this.log.child({ listen }),
        accessLog ? this.log.child({ log: 'access' }) : null,
      );
      l.handTo(f);
      fronts.push(f);
    }
    this.fronts = fronts;
  }

  close(): void {
    for (const f of this.fronts) f.close();
  }
}
