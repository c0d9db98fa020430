import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Clock } from '../clock.js';
import type { DiscoveryConfig } from '../config/discovery.js';
import { parseConsul, parseEntries } from './entries.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/** A registry's answer is at most this large. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(url: URL, signal: AbortSignal): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { signal, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(new DiscoveryError(`answer over ${MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(d);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The URL as logs, errors, /api/services, the status page and `check` show
 * it: without its query string, where registries take tokens (Consul's
 * ?token=); "?…" says there was one. The request itself uses the whole URL.
 * (user:password in the URL is refused by the config.)
 */
export function shownUrl(raw: string): string {
  const q = raw.search(/[?#]/);
  return q < 0 ? raw : `${raw.slice(0, q)}${raw[q] === '?' ? '?…' : ''}`;
}

/**
 * kind = "http": a URL answering JSON, polled every `interval`. shape =
 * "generic" is the `backends` shape; shape = "consul" is Consul's
 * /v1/health/service/NAME, asked with blocking queries: each request carries
 * the X-Consul-Index of the last answer and `wait`, and Consul answers when
 * the list changes (or the wait ends), so a change arrives at once.
 */
export function httpSource(cfg: DiscoveryConfig, clock: Clock): Source {
  const consul = cfg.shape === 'consul';
  let index = 0;
  const waitS = Math.ceil(cfg.waitMs / 1000);
  const shown = shownUrl(cfg.url);
  return {
    target: shown,
    // Consul adds up to wait/16 of jitter to a blocking query.
    deadlineMs: () => cfg.timeoutMs + (consul && index > 0 ? cfg.waitMs + cfg.waitMs / 16 : 0),
    reset(): void {
      index = 0;
    },
    async lookup(signal): Promise<Answer> {
      const url = new URL(cfg.url);
      const asked = index;
      if (consul && asked > 0) {
        url.searchParams.set('index', String(asked));
        url.searchParams.set('wait', `${waitS}s`);
      }
      const began = clock.now();
      let reply: Reply;
      try {
        reply = await get(url, signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw err instanceof DiscoveryError
          ? err
          : new DiscoveryError(`${shown}: ${(err as Error).message}`);
      }
      if (reply.status !== 200) throw new DiscoveryError(`${shown}: HTTP ${reply.status}`);
      let doc: unknown;
      try {
        doc = JSON.parse(reply.body);
      } catch (err) {
        throw new DiscoveryError(`${shown}: bad JSON: ${(err as Error).message}`);
      }
      const backends = consul
        ? parseConsul(doc, cfg.backend, shown)
        : parseEntries(doc, cfg.backend, shown);
      if (!consul) return { backends, ttlMs: null };
      // Consul's rules for the index: reset when it goes backwards, never below 1.
      const header = Number(reply.headers['x-consul-index']);
      const next = Number.isSafeInteger(header) && header > 0 ? header : 0;
      index = next < asked ? 0 : next;
      // News (or the first answer), or a wait that ran out: block again at once. No news in a
      // reply that came early: wait `interval`, so a registry that answers at once every time
      // is not asked in a loop.
      const waited = asked > 0 && clock.now() - began >= cfg.waitMs / 2;
      return { backends, ttlMs: null, again: next > 0 && (next !== asked || waited) };
    },
  };
}
