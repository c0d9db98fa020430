import type { Dispatcher } from 'undici';
import { LbError } from '../errors.js';
import { BackendPools } from './backend-pools.js';
import { BalancedRequest } from './balanced-request.js';
import type { HttpHost } from './host.js';
import { undici } from './undici.js';

type Headers = Dispatcher.DispatchOptions['headers'];

/** Whether a header list of any shape undici takes names `host`. */
function hasHost(headers: Headers): boolean {
  if (headers == null) return false;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0]))
      return headers.some((h) => String(h[0]).toLowerCase() === 'host');
    for (let i = 0; i < headers.length; i += 2)
      if (String(headers[i]).toLowerCase() === 'host') return true;
    return false;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k] of headers as Iterable<[string, unknown]>)
      if (k.toLowerCase() === 'host') return true;
    return false;
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === 'host');
}

/**
 * The URL's host goes to the backend as Host (as a reverse proxy passes it on);
 * without an origin (lb.request) the backend's own address is sent.
 */
function withHost(opts: Dispatcher.DispatchOptions): Dispatcher.DispatchOptions {
  if (opts.origin == null || hasHost(opts.headers)) return opts;
  const host = new URL(String(opts.origin)).host;
  const h = opts.headers;
  let headers: Headers;
  if (h == null) headers = { host };
  else if (Array.isArray(h))
    headers = Array.isArray(h[0])
      ? [...(h as unknown as string[][]).flat(), 'host', host]
      : [...h, 'host', host];
  else if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function')
    headers = [...(h as Iterable<[string, string]>)].flat().concat('host', host);
  else headers = { ...(h as Record<string, string>), host };
  return { ...opts, headers };
}

/**
 * An undici Dispatcher on one service: `fetch(url, { dispatcher })`,
 * `undici.request(url, { dispatcher })` and anything built on undici send
 * each request to the backend the service's strategy picks (its health,
 * draining, limits and retries included), over keep-alive connections kept
 * per backend (see BackendPools). The URL's host is only the Host header:
 * the backends are the service's.
 */
export interface ServiceDispatcher extends Dispatcher {
  /** Backend TLS settings changed: the connections made under the old ones take no new request. */
  dropConnections(): void;
}

let Impl: (new (host: HttpHost, serviceName: string) => ServiceDispatcher) | null = null;

/** The service's dispatcher; undici's Dispatcher class is loaded here, at the first one (see undici.ts). */
export function serviceDispatcher(host: HttpHost, serviceName: string): ServiceDispatcher {
  Impl ??= dispatcherClass(undici().Dispatcher);
  return new Impl(host, serviceName);
}

function dispatcherClass(Base: typeof Dispatcher) {
  return class extends Base implements ServiceDispatcher {
    private readonly pools: BackendPools;
    private closing: Promise<void> | null = null;

    constructor(
      private readonly host: HttpHost,
      private readonly serviceName: string,
    ) {
      super();
      this.pools = new BackendPools(host);
    }

    override dispatch(
      opts: Dispatcher.DispatchOptions,
      handler: Dispatcher.DispatchHandlers,
    ): boolean {
      if (this.closing) {
        handler.onError?.(new LbError('LB_ERR_STATE', `service ${this.serviceName}: closed`));
        return false;
      }
      const key = (opts as { key?: unknown }).key;
      new BalancedRequest(
        this.host,
        this.pools,
        withHost(opts),
        handler,
        typeof key === 'string' ? key : '',
      ).start();
      return true;
    }

    /** Backend TLS settings changed: the connections made under the old ones take no new request. */
    dropConnections(): void {
      this.pools.dropAll();
    }

    /** Takes no new request; resolves once the ones under way have finished. */
    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      this.closing ??= this.pools.close();
      if (!callback) return this.closing;
      void this.closing.then(() => callback());
    }

    /** Cuts the requests under way. */
    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
      this.closing ??= Promise.resolve();
      const done = this.pools.destroy();
      const callback = typeof a === 'function' ? a : b;
      if (!callback) return done;
      void done.then(() => callback());
    }
  };
}
