import type { TLSSocket } from 'node:tls';
import type { Client, Pool } from 'undici';
import type { Backend } from '../backend/backend.js';
import { noop } from '../noop.js';
import { backendConnector } from './backend-connector.js';
import type { HttpHost } from './host.js';
import { undici } from './undici.js';

/** Requests at once on one HTTP/2 connection (undici's own maxConcurrentStreams default). */
const H2_STREAMS = 100;

/**
 * Keep-alive HTTP connections, one undici Pool per backend, on top of the
 * balancer's choice of backend: the strategy picks a backend per request,
 * and its pool reuses an idle connection to it (HTTP/1.1) or a stream of its
 * HTTP/2 session. A backend that leaves the candidates (down, drained,
 * disabled, removed) loses its pool at once: no new request can reach it,
 * and its idle connections close; requests already on it finish, except on a
 * disabled backend (and a down one with health.on_down = "shutdown-sessions"),
 * whose are cut, as its layer-4 sessions are.
 */
export class BackendPools {
  private readonly pools = new Map<Backend, Pool>();
  /** Pools taking no new request, finishing the ones they have (a destroy still cuts those). */
  private readonly closing = new Set<Pool>();
  private isClosed = false;
  private readonly onState = (): void => this.sync();

  constructor(private readonly host: HttpHost) {
    host.backends.on('state', this.onState);
  }

  /** The pool of a backend just picked (a candidate). */
  for(b: Backend): Pool {
    let p = this.pools.get(b);
    if (!p) {
      const scheme = this.host.connector.tls ? 'https' : 'http';
      const host = b.host.includes(':') ? `[${b.host}]` : b.host;
      const connect = backendConnector(this.host, b);
      const u = undici();
      p = new u.Pool(`${scheme}://${host}:${b.port}`, {
        allowH2: true,
        // undici counts an HTTP/2 connection as busy at `pipelining` requests (1 by default), and
        // would open a connection per concurrent request: an h2 one takes many streams instead.
        factory: (origin, opts) => {
          const client: Client = new u.Client(origin, {
            ...opts,
            connect: (o, cb) =>
              connect(o, (err, sock) => {
                if (sock)
                  client.pipelining = (sock as TLSSocket).alpnProtocol === 'h2' ? H2_STREAMS : 1;
                if (err) cb(err, null);
                else cb(null, sock as TLSSocket);
              }),
          });
          return client;
        },
      });
      this.pools.set(b, p);
    }
    return p;
  }

  /** Closed or destroyed: no pool is made any more. */
  get closed(): boolean {
    return this.isClosed;
  }

  private sync(): void {
    const cands = this.host.backends.candidates;
    for (const [b, p] of this.pools) {
      if (!b.removed && cands.includes(b)) continue;
      this.pools.delete(b);
      const cut = b.disabled || (!b.healthy && this.host.cfg.health.onDown === 'shutdown-sessions');
      if (cut) void p.destroy().catch(noop);
      else void this.retire(p);
    }
  }

  private async retire(p: Pool): Promise<void> {
    this.closing.add(p);
    await p.close().catch(noop);
    this.closing.delete(p);
  }

  /** New backend_tls settings: connections made under the old ones take no new request. */
  dropAll(): void {
    for (const p of this.pools.values()) void this.retire(p);
    this.pools.clear();
  }

  /** Resolves once the requests under way have finished. */
  async close(): Promise<void> {
    this.stop();
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all([
      ...all.map((p) => this.retire(p)),
      ...[...this.closing].map((p) => p.close().catch(noop)),
    ]);
  }

  /** Cuts the requests under way, on every pool, closing ones included. */
  async destroy(): Promise<void> {
    this.stop();
    const all = [...this.pools.values(), ...this.closing];
    this.pools.clear();
    this.closing.clear();
    await Promise.all(all.map((p) => p.destroy().catch(noop)));
  }

  private stop(): void {
    if (!this.isClosed) this.host.backends.off('state', this.onState);
    this.isClosed = true;
  }
}
