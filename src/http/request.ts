import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ServiceConfig } from '../config/schema.js';
import { InvalidArgumentError, LbError, RequestTimeoutError } from '../errors.js';

export interface HttpRequestOptions {
  /** Default "GET". */
  method?: string;
  /** Path and query, starting with "/" (default "/"). */
  path?: string;
  /** Without a `host`, the backend's own address is sent as Host. */
  headers?: Record<string, string | string[]> | string[];
  body?: string | Uint8Array | null;
  /** Milliseconds for the whole request, retries and body included (default: the service's request_timeout). */
  timeout?: number;
  signal?: AbortSignal;
  /** May be sent again after a reset before any answer (default: GET, HEAD, OPTIONS, PUT, DELETE, TRACE). */
  idempotent?: boolean;
  /** What ip-hash hashes for this request (a user or tenant id); default "". */
  key?: string;
}

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON (throws on bad JSON). */
  json<T = unknown>(): T;
}

/**
 * One HTTP request through a service's dispatcher, read to the end: the
 * seed's forwardRequest as one call. Rejects with RequestTimeoutError
 * (LB_ERR_TIMEOUT) past the timeout, LbError LB_ERR_ABORTED when the signal
 * fires, DialError (LB_ERR_DIAL) when every connect failed, NoBackendError,
 * or undici's error for a request that failed once sent.
 */
export async function requestThrough(
  dispatcher: Dispatcher,
  cfg: ServiceConfig,
  opts: HttpRequestOptions,
): Promise<HttpResponse> {
  const timeoutMs = opts.timeout ?? cfg.requestTimeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1)
    throw new InvalidArgumentError(`timeout: expected whole milliseconds >= 1, got ${timeoutMs}`);
  const path = opts.path ?? '/';
  if (!path.startsWith('/'))
    throw new InvalidArgumentError(`path: must start with "/", got ${path}`);
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new RequestTimeoutError(cfg.name, timeoutMs)),
    timeoutMs,
  );
  const onAbort = (): void => ctl.abort(new LbError('LB_ERR_ABORTED', 'request aborted'));
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await dispatcher.request({
      method: (opts.method ?? 'GET').toUpperCase() as Dispatcher.HttpMethod,
      path,
      headers: opts.headers ?? null,
      body: opts.body ?? null,
      signal: ctl.signal,
      ...(opts.idempotent === undefined ? {} : { idempotent: opts.idempotent }),
      ...(opts.key === undefined ? {} : { key: opts.key }),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return {
      statusCode: res.statusCode,
      headers: res.headers,
      body,
      text: () => body.toString('utf8'),
      json: <T>() => JSON.parse(body.toString('utf8')) as T,
    };
  } catch (err) {
    if (ctl.signal.aborted) throw ctl.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
