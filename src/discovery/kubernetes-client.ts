import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { readCapped } from '../capped-body.js';
import type { KubeConnection } from './kubernetes-connection.js';
import { DiscoveryError } from './source.js';

/** A list page is at most this large (100 slices of 1,000 endpoints fit). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** One watch event is one object: a slice of 1,000 endpoints is well under this. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** The API server answered with an error status (its Status message, when it sent one). */
export class KubeApiError extends DiscoveryError {
  constructor(
    message: string,
    /** The HTTP status, or a watch ERROR event's Status code: 410 says "relist". */
    readonly status: number,
  ) {
    super(message);
  }
}

export const GONE = 410;

/** One line of a watch stream. */
export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

async function send(
  conn: KubeConnection,
  path: string,
  signal: AbortSignal,
  idleMs: number,
): Promise<{ res: IncomingMessage; destroy: (err: Error) => void }> {
  const token = await conn.token();
  const base = conn.server.pathname.replace(/\/$/, '');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: conn.server.hostname.replace(/^\[|\]$/g, ''),
        port: conn.server.port || 443,
        path: `${base}${path}`,
        method: 'GET',
        agent: false,
        signal,
        ca: conn.ca ?? undefined,
        cert: conn.cert ?? undefined,
        key: conn.key ?? undefined,
        rejectUnauthorized: !conn.insecure,
        servername: conn.servername ?? undefined,
        headers: {
          accept: 'application/json',
          'user-agent': 'blitz-lb',
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
      },
      (res) => resolve({ res, destroy: (err) => req.destroy(err) }),
    );
    // A silent socket is a dead one: a watch hears bookmarks, a list answers at once.
    req.setTimeout(idleMs, () => req.destroy(new Error(`no answer for ${idleMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Reads a whole body, up to MAX_BODY_BYTES: a larger one is an error, and the request is ended. */
async function body(res: IncomingMessage, destroy: (err: Error) => void): Promise<string> {
  const { text } = await readCapped(res, {
    keep: MAX_BODY_BYTES,
    stopAt: MAX_BODY_BYTES,
    over: () => new DiscoveryError(`answer over ${MAX_BODY_BYTES} bytes`),
    stop: destroy,
    cut: (err) => new DiscoveryError(err ? `answer cut: ${err.message}` : 'answer cut short'),
  });
  return text;
}

/** A non-200 answer as an error naming the status and, if there was one, the Status's message. */
async function failure(res: IncomingMessage, destroy: (err: Error) => void): Promise<never> {
  const status = res.statusCode ?? 0;
  let detail = '';
  try {
    const doc = JSON.parse(await body(res, destroy)) as { message?: unknown };
    if (typeof doc.message === 'string') detail = `: ${doc.message.slice(0, 200)}`;
  } catch {}
  throw new KubeApiError(`HTTP ${status}${detail}`, status);
}

/** GET `path` as JSON. */
export async function getJson(
  conn: KubeConnection,
  path: string,
  signal: AbortSignal,
  idleMs: number,
): Promise<unknown> {
  const { res, destroy } = await send(conn, path, signal, idleMs);
  if (res.statusCode !== 200) return failure(res, destroy);
  const text = await body(res, destroy);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DiscoveryError(`bad JSON: ${(err as Error).message}`);
  }
}

/**
 * Streams a watch: one JSON object a line, each handed to `onEvent` as it
 * arrives. Resolves when the server ends the stream (its timeoutSeconds ran
 * out); rejects when it is cut, goes silent for `idleMs`, or sends a bad
 * line. `onOpen` is called once the server has said 200.
 */
export async function watch(
  conn: KubeConnection,
  path: string,
  signal: AbortSignal,
  idleMs: number,
  onOpen: () => void,
  onEvent: (e: WatchEvent) => void,
): Promise<void> {
  const { res, destroy } = await send(conn, path, signal, idleMs);
  if (res.statusCode !== 200) return failure(res, destroy);
  onOpen();
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      reject(err);
      destroy(err);
    };
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      if (done) return;
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') {
          try {
            onEvent(JSON.parse(line) as WatchEvent);
          } catch (err) {
            fail(
              err instanceof DiscoveryError
                ? err
                : new DiscoveryError(`bad watch event: ${(err as Error).message}`),
            );
            return;
          }
        }
        nl = buf.indexOf('\n');
      }
      if (buf.length > MAX_LINE_BYTES)
        fail(new DiscoveryError(`a watch event over ${MAX_LINE_BYTES} bytes`));
    });
    res.on('end', () => {
      if (buf.trim() !== '') fail(new DiscoveryError('watch cut in the middle of an event'));
      else if (!done) {
        done = true;
        resolve();
      }
    });
    res.on('error', (err) => fail(new DiscoveryError(`watch cut: ${err.message}`)));
    res.on('close', () => {
      if (!res.complete) fail(new DiscoveryError('watch cut short'));
    });
  });
}
