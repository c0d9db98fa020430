import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { HostPort } from '../config/address.js';
import { ListenError } from '../errors.js';
import type { ListenOn } from '../lifecycle/passed-sockets.js';
import type { Logger } from '../logger.js';
import { noop } from '../noop.js';
import { LogThrottle } from '../rate-limit.js';
import type { FdBudget } from './fd-budget.js';

export interface ListenerHost {
  /** Open sessions of this service, for the max_connections check. */
  readonly activeSessions: number;
  readonly cfg: { readonly maxConnections: number };
  /** A new client, paused, with an 'error' listener not yet attached. */
  accept(client: Socket): void;
  /** The process's descriptor reserve (null: not checked). */
  readonly fds: FdBudget | null;
  /** A client turned away at a limit. */
  refused(client: Socket, limit: 'max-connections' | 'descriptors'): void;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EBADF: 'no such open descriptor',
  ENOTSOCK: 'the descriptor is not a socket',
};

/** A bound listener's host before a service adopts it: every client is closed at once. */
const NOT_YET: ListenerHost = {
  activeSessions: 0,
  cfg: { maxConnections: 0 },
  fds: null,
  accept: (c) => c.destroy(),
  refused: noop,
};

/**
 * Whether this process binds its listen addresses with SO_REUSEPORT (set once
 * by a cluster worker, see cluster/reuse-port.ts): each worker then has its
 * own socket in the port's group and the kernel spreads new connections.
 */
let reusePort = false;

export function bindWithReusePort(on: boolean): void {
  reusePort = on;
}

/** One service's listening socket: accept, enforce max_connections, hand off. */
export class Listener {
  private readonly server: Server;
  /**
   * More sockets of the same address this listener also accepts on: an
   * upgrade from a balancer whose N workers each had their own SO_REUSEPORT
   * socket hands over all N, and a process with fewer workers must accept on
   * every one of them (a socket left unaccepted strands its clients; one
   * closed resets them).
   */
  private readonly extra: Server[] = [];
  private readonly acceptErrors: LogThrottle;

  constructor(
    private readonly listen: HostPort,
    private host: ListenerHost,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.acceptErrors = new LogThrottle(1000, clock);
    this.server = this.newServer();
  }

  /**
   * Binds `listen` with no service behind it yet (a reload binds everything
   * first): until `handTo`, whoever connects is closed, so a reload that fails
   * later has taken no client in.
   */
  static async bindPending(
    listen: HostPort,
    log: Logger,
    clock: Clock,
    on: ListenOn | null = null,
  ): Promise<Listener> {
    const l = new Listener(listen, NOT_YET, log, clock);
    await l.start(on);
    return l;
  }

  /**
   * Binds `listen`, or listens on `on`: a descriptor passed to the process
   * or a raw handle a cluster primary sent (lifecycle/passed-sockets.ts).
   */
  async start(on: ListenOn | null = null): Promise<void> {
    if (!Array.isArray(on)) return this.listenOne(this.server, on);
    const [first = null, ...rest] = on;
    await this.listenOne(this.server, first);
    for (const h of rest) {
      const server = this.newServer();
      this.extra.push(server);
      await this.listenOne(server, h);
    }
  }

  private newServer(): Server {
    // pauseOnConnect: the client is not read until its backend is ready, so nothing is buffered meanwhile.
    return createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) =>
      this.onConnection(c),
    );
  }

  private listenOne(server: Server, on: number | object | null): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why = (err.code && ERRNO_TEXT[err.code]) ?? err.message;
        const passed =
          on === null
            ? ''
            : typeof on === 'number'
              ? ` (passed descriptor ${on})`
              : ' (passed socket)';
        reject(new ListenError(`listen ${this.listen.address}${passed}: ${why}`, err));
      };
      server.once('error', onError);
      const listening = (): void => {
        server.removeListener('error', onError);
        // After bind, server errors come from accept (EMFILE, ENFILE): log, never crash.
        server.on('error', (err) => this.onAcceptError(err));
        resolve();
      };
      if (on === null)
        server.listen(
          { host: this.listen.host, port: this.listen.port, backlog: 511, reusePort },
          listening,
        );
      else if (typeof on === 'number') server.listen({ fd: on, backlog: 511 }, listening);
      // A handle is listened on by this process alone (not through the cluster primary).
      else server.listen(on, 511, listening);
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** The listening server, for an upgrade to hand its socket to the new process. */
  get listeningServer(): Server {
    return this.server;
  }

  /** Every socket this listener accepts on: the server's, then any extra ones (see `extra`). */
  get listeningServers(): readonly Server[] {
    return [this.server, ...this.extra];
  }

  /** The address as configured ("127.0.0.1:8080"; port 0 until bound). */
  get configured(): HostPort {
    return this.listen;
  }

  /**
   * A reload gave this address to another service (a rename, or a removed
   * service's address reused): new clients go to it from now on; the bound
   * socket is never closed and rebound, so no client sees a refusal.
   */
  handTo(host: ListenerHost): void {
    this.host = host;
  }

  /** Stops accepting; open sessions are not touched (server.close() would wait for them all). */
  stop(): void {
    for (const server of this.listeningServers) if (server.listening) server.close();
  }

  private onConnection(client: Socket): void {
    try {
      const full =
        this.host.activeSessions >= this.host.cfg.maxConnections
          ? 'max-connections'
          : this.host.fds?.admit() === false
            ? 'descriptors'
            : null;
      if (full) {
        client.on('error', noop);
        this.host.refused(client, full);
        client.destroy();
        return;
      }
      this.host.accept(client);
    } catch (err) {
      // Never the process: this client goes, the listener stays.
      client.on('error', noop);
      client.destroy();
      this.log.error({ err }, 'accepting a client failed');
    }
  }

  private onAcceptError(err: Error): void {
    const held = this.acceptErrors.pass();
    if (held >= 0)
      this.log.error({ err, listen: this.listen.address, alsoFailed: held }, 'accept failed');
  }
}
