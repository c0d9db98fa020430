import type { Socket } from 'node:net';
import type { ServiceConfig } from '../../config/schema.js';
import type { Logger } from '../../logger.js';
import { noop } from '../../noop.js';
import { type Admission, type PendingPass, type Refusal, SharedAdmission } from '../admission.js';
import type { FdBudget } from '../fd-budget.js';
import { readProxyHeader } from '../header-reader.js';
import { clientKey } from '../ip-text.js';
import type { ListenerHost } from '../listener.js';
import type { ProxyAddresses } from '../proxy-protocol.js';
import { readClientHello } from './hello-reader.js';
import type { Routed } from './routed-session.js';
import { SniRoutes } from './sni-routes.js';

/** A service as a front sees it: its open sessions. */
export interface FrontTarget {
  readonly cfg: ServiceConfig;
  readonly activeSessions: number;
  /** A client the front has read (PROXY header, hello): the service takes it from here. */
  acceptRouted(client: Socket, r: Routed): void;
  trustedSender(ip: string): boolean;
  /** Its allow/deny lists and per-source limits, judged at accept (see SharedAdmission). */
  readonly admission: Admission;
  /** A client refused for this service before its hello (the only service on the address). */
  refusedBeforeHello(client: Socket, ip: string, why: Refusal): void;
}

/** Clients turned away before any service took them, by cause: one record per listen address, kept across reloads. */
export interface FrontCounters {
  'bad-hello': number;
  'refused-sni': number;
  'refused-proxy': number;
  /** Denied by every service on the address (several share it), at accept. */
  'refused-denied': number;
  /** Over the per-source count of clients still sending their hello (several services share the address). */
  'refused-source': number;
  'max-connections': number;
  descriptors: number;
}

export function frontCounters(): FrontCounters {
  return {
    'bad-hello': 0,
    'refused-sni': 0,
    'refused-proxy': 0,
    'refused-denied': 0,
    'refused-source': 0,
    'max-connections': 0,
    descriptors: 0,
  };
}

type FrontCause =
  | 'bad-hello'
  | 'refused-sni'
  | 'refused-proxy'
  | 'refused-denied'
  | 'refused-source';

/**
 * The listener host of a listen address whose services read the hello:
 * several services routed by SNI and ALPN, or one that routes by SNI or
 * terminates TLS. Per client: the PROXY header first (when accepted), then
 * the ClientHello, peeked and put back, then the service its name routes to.
 * Services that do neither never come here: their listener hands clients
 * straight to their sessions, as before.
 */
export class Front implements ListenerHost {
  readonly cfg: { readonly maxConnections: number };
  readonly fds: FdBudget | null;
  /** null: one service that takes every client without reading its hello (it terminates TLS, no sni). */
  readonly routes: SniRoutes<FrontTarget> | null;
  readonly first: FrontTarget;
  /** allow/deny and per-source limits at accept, before the hello is read. */
  readonly admission: SharedAdmission;
  private readonly pending = new Set<FrontClient>();

  constructor(
    readonly listen: string,
    readonly targets: readonly FrontTarget[],
    readonly counters: FrontCounters,
    fds: FdBudget | null,
    readonly log: Logger,
    readonly accessLog: Logger | null,
  ) {
    this.first = targets[0] as FrontTarget;
    this.admission = new SharedAdmission(targets.map((t) => t.admission));
    this.fds = fds;
    this.cfg = {
      maxConnections: targets.reduce((n, t) => n + Math.max(0, t.cfg.maxConnections), 0),
    };
    if (targets.length === 1 && !this.first.cfg.sni) this.routes = null;
    else {
      const routes = new SniRoutes<FrontTarget>();
      // Validated: no clash is left for add() to find.
      for (const t of targets) routes.add({ target: t, sni: t.cfg.sni ?? [], alpn: t.cfg.alpn });
      this.routes = routes;
    }
  }

  get activeSessions(): number {
    let n = this.pending.size;
    for (const t of this.targets) n += t.activeSessions;
    return n;
  }

  accept(client: Socket): void {
    client.on('error', noop);
    const c = new FrontClient(this, client);
    this.pending.add(c);
    c.start();
  }

  refused(client: Socket, limit: 'max-connections' | 'descriptors'): void {
    this.counters[limit]++;
    this.log.debug(
      { client: client.remoteAddress, listen: this.listen, limit },
      'refused at a limit',
    );
  }

  settled(c: FrontClient): void {
    this.pending.delete(c);
  }

  /** Turned away before any service: counted by cause, logged at debug, one access-log line. */
  turnedAway(client: Socket, cause: FrontCause, reason: string, sni: string | null): void {
    this.counters[cause]++;
    this.log.debug(
      { client: client.remoteAddress, listen: this.listen, cause, reason },
      'client refused before routing',
    );
    this.accessLog?.info({
      // Refused before any service took it: no session, so no id.
      session: null,
      client: `${client.remoteAddress}:${client.remotePort}`,
      listen: this.listen,
      backend: null,
      sni,
      bytesIn: client.bytesRead,
      bytesOut: 0,
      ms: 0,
      cause,
      reason,
    });
    client.destroy();
  }

  /** Shutdown: clients still sending their header or hello go now. */
  close(): void {
    for (const c of this.pending) c.client.destroy();
  }
}

/** One client between accept and its service: PROXY header, then hello, then hand-over. */
class FrontClient {
  private cancel: (() => void) | null = null;
  private proxied: ProxyAddresses | null = null;
  /** Its pass through the checks at accept; given back unless its service takes it over. */
  private pass: PendingPass | null = null;
  private settled = false;

  constructor(
    private readonly front: Front,
    readonly client: Socket,
  ) {}

  start(): void {
    this.client.once('close', this.onClose);
    const { front, client } = this;
    if (!front.first.cfg.acceptProxy) {
      if (this.judge(client.remoteAddress)) this.readHello();
      return;
    }
    if (!front.first.trustedSender(client.remoteAddress ?? '')) {
      this.refuse('refused-proxy', 'not a trusted PROXY sender', null);
      return;
    }
    this.cancel = readProxyHeader(client, (failure, addresses) => {
      this.cancel = null;
      if (failure !== null) this.refuse('refused-proxy', failure, null);
      else {
        this.proxied = addresses;
        if (this.judge(addresses?.srcAddr ?? client.remoteAddress)) this.readHello();
      }
    });
  }

  /**
   * allow/deny and the per-source limits, on the client's own address (the
   * one its PROXY header gave), before a byte of its hello is read. False:
   * refused, counted, and closed.
   */
  private judge(address: string | undefined): boolean {
    const ip = clientKey(address ?? '');
    const v = this.front.admission.judge(ip);
    if (typeof v !== 'string') {
      this.pass = v;
      return true;
    }
    if (this.front.targets.length === 1) {
      this.settle();
      this.front.first.refusedBeforeHello(this.client, ip, v);
      this.client.destroy();
    } else
      this.refuse(
        v === 'denied' ? 'refused-denied' : 'refused-source',
        v === 'denied' ? 'denied by every service here' : `over the per-source limit (${v})`,
        null,
      );
    return false;
  }

  private readHello(): void {
    const routes = this.front.routes;
    if (!routes) {
      this.hand(this.front.first, {
        proxied: this.proxied,
        serverName: null,
        alpn: null,
        route: null,
        pass: this.carriedPass(),
      });
      return;
    }
    this.cancel = readClientHello(
      this.client,
      this.front.first.cfg.helloTimeoutMs,
      (failure, hello) => {
        this.cancel = null;
        if (!hello) {
          this.refuse('bad-hello', failure ?? 'no hello', null);
          return;
        }
        const route = routes.pick(hello.serverName, hello.alpn);
        if (!route) {
          const alpn = hello.alpn ? `, ALPN ${hello.alpn.join(',')}` : '';
          this.refuse(
            'refused-sni',
            `no service takes ${hello.serverName ?? 'a hello without a name'}${alpn}`,
            hello.serverName,
          );
          return;
        }
        this.hand(route.target, {
          proxied: this.proxied,
          serverName: hello.serverName,
          alpn: hello.alpn,
          route: route.pattern,
          pass: this.carriedPass(),
        });
      },
    );
  }

  private carriedPass(): PendingPass | null {
    return this.pass?.carried ? this.pass : null;
  }

  /** `handed`: its service takes a carried pass over (see PendingPass). */
  private settle(handed = false): void {
    if (this.settled) return;
    this.settled = true;
    const p = this.pass;
    if (p !== null && !(handed && p.carried)) this.front.admission.release(p);
    this.client.removeListener('close', this.onClose);
    this.front.settled(this);
  }

  private hand(target: FrontTarget, r: Routed): void {
    this.settle(true);
    try {
      target.acceptRouted(this.client, r);
    } catch (err) {
      // Never the process: this client goes, the listener stays.
      this.client.destroy();
      this.front.log.error(
        { err, listen: this.front.listen },
        'handing a client to its service failed',
      );
    }
  }

  private refuse(cause: FrontCause, reason: string, sni: string | null): void {
    this.settle();
    this.front.turnedAway(this.client, cause, reason, sni);
  }

  private readonly onClose = (): void => {
    this.cancel?.();
    this.cancel = null;
    this.settle();
  };
}
