import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { makePki, type Pki } from './pki.js';

/** An endpoint of a slice, as the test writes it. */
export interface Ep {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zone?: string;
}

export const NAMESPACE = 'shop';
export const SERVICE = 'web';

/**
 * An EndpointSlice object shaped as the Kubernetes API reference shows it
 * (discovery.k8s.io/v1): labels naming its Service, the address type, a
 * port list shared by its endpoints, and per endpoint its addresses,
 * conditions, node, zone and hints.
 */
export function endpointSlice(
  name: string,
  endpoints: Ep[],
  ports: { name: string; port: number }[],
  opts: { service?: string; addressType?: string } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: NAMESPACE,
      generateName: `${opts.service ?? SERVICE}-`,
      labels: {
        'kubernetes.io/service-name': opts.service ?? SERVICE,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: opts.service ?? SERVICE }],
    },
    addressType: opts.addressType ?? 'IPv4',
    endpoints: endpoints.map((e, i) => ({
      addresses: [e.ip],
      conditions: {
        ready: e.ready ?? true,
        serving: e.serving ?? e.ready ?? true,
        terminating: e.terminating ?? false,
      },
      nodeName: `node-${i % 3}`,
      ...(e.zone ? { zone: e.zone, hints: { forZones: [{ name: e.zone }] } } : {}),
      targetRef: { kind: 'Pod', namespace: NAMESPACE, name: `${name}-pod-${i}` },
    })),
    ports: ports.map((p) => ({ ...p, protocol: 'TCP' })),
  };
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Record<string, unknown>;
}

interface Watcher {
  res: ServerResponse;
  selector: string;
}

/** What the stand-in API server was asked, in order. */
export interface Asked {
  kind: 'list' | 'watch';
  resourceVersion: string | null;
  token: string | null;
  query: URLSearchParams;
}

/**
 * A stand-in Kubernetes API server (node:https with its own CA) that speaks
 * list and watch for EndpointSlices of one namespace: consistent lists with
 * limit/continue, watches from a resourceVersion replaying the history after
 * it and then streaming, BOOKMARK events, "410 Gone" (as an ERROR event, as
 * the API sends it) for a resourceVersion older than its compacted history,
 * and bearer tokens (401 for any other).
 */
export class KubeApi {
  readonly asked: Asked[] = [];
  /** The bearer tokens accepted now. */
  tokens = new Set<string>(['token-1']);
  /** Answer watches and lists with this status instead (a failing API server); 0: answer. */
  failWith = 0;
  /** Items a list page holds at most, whatever `limit` asked (a server may send fewer); 0: `limit`. */
  pageSize = 0;
  private rv = 100;
  private readonly slices = new Map<string, Record<string, unknown>>();
  private readonly history: Event[] = [];
  /** Events at or below this are compacted away: a watch from there gets 410. */
  private compacted = 0;
  private readonly watchers = new Set<Watcher>();
  private server!: ReturnType<typeof createServer>;
  url = '';
  port = 0;

  constructor(readonly pki: Pki) {}

  static async start(t: TestContext): Promise<KubeApi> {
    const api = new KubeApi(makePki(t));
    api.server = createServer({ cert: api.pki.server.cert, key: api.pki.server.key }, (req, res) =>
      api.handle(req.url ?? '/', req.headers.authorization ?? null, res),
    );
    api.server.listen(0, '127.0.0.1');
    await once(api.server, 'listening');
    api.port = (api.server.address() as AddressInfo).port;
    api.url = `https://127.0.0.1:${api.port}`;
    t.after(() => {
      for (const w of api.watchers) w.res.destroy();
      api.server.closeAllConnections();
      api.server.close();
    });
    return api;
  }

  /** A kubeconfig in the PKI's directory, as kubectl writes one, with a tokenFile. */
  kubeconfig(tokenFile: string, namespace = NAMESPACE): string {
    const file = join(this.pki.dir, 'kubeconfig');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- cluster:',
        `    certificate-authority-data: ${this.pki.ca.cert.toString('base64')}`,
        `    server: ${this.url}`,
        '  name: stand-in',
        'contexts:',
        '- context:',
        '    cluster: stand-in',
        `    namespace: ${namespace}`,
        '    user: blitz-lb',
        '  name: stand-in',
        'current-context: stand-in',
        'preferences: {}',
        'users:',
        '- name: blitz-lb',
        '  user:',
        `    tokenFile: ${tokenFile}`,
        '',
      ].join('\n'),
    );
    return file;
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Creates or replaces a slice: an ADDED or MODIFIED event. */
  put(obj: Record<string, unknown>): void {
    const meta = obj.metadata as { name: string; resourceVersion?: string };
    const type = this.slices.has(meta.name) ? 'MODIFIED' : 'ADDED';
    this.record(type, obj);
  }

  delete(name: string): void {
    const obj = this.slices.get(name);
    if (obj) this.record('DELETED', obj);
  }

  /** A BOOKMARK to every watcher that asked for them: "nothing for you up to here". */
  bookmark(): string {
    this.rv++;
    for (const w of this.watchers)
      this.write(w.res, {
        type: 'BOOKMARK',
        object: {
          kind: 'EndpointSlice',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: { resourceVersion: String(this.rv) },
        },
      });
    return String(this.rv);
  }

  /** Forgets the history so far: a watch resuming from before now gets 410 Gone. */
  compact(): void {
    this.compacted = this.rv;
  }

  /**
   * Cuts every watch in the middle of an event line: half a JSON object, then
   * the connection closes (FIN, without the chunked body's end), everything
   * written before it delivered.
   */
  cutWatches(): void {
    for (const w of this.watchers) {
      w.res.write('{"type":"MODIFIED","object":{"kind":"EndpointSl');
      w.res.socket?.end();
    }
    this.watchers.clear();
  }

  /** Drops every watch's connection at once, unwritten data and all. */
  resetWatches(): void {
    for (const w of this.watchers) w.res.socket?.destroy();
    this.watchers.clear();
  }

  /** Ends every watch cleanly, as the server does when timeoutSeconds runs out. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  private record(type: Event['type'], obj: Record<string, unknown>): void {
    this.rv++;
    const meta = obj.metadata as Record<string, unknown>;
    const object = { ...obj, metadata: { ...meta, resourceVersion: String(this.rv) } };
    if (type === 'DELETED') this.slices.delete(meta.name as string);
    else this.slices.set(meta.name as string, object);
    const e: Event = { rv: this.rv, type, object };
    this.history.push(e);
    for (const w of this.watchers) if (this.matches(object, w.selector)) this.send(w.res, e);
  }

  private matches(obj: Record<string, unknown>, selector: string): boolean {
    const [k, v] = selector.split('=');
    const labels = (obj.metadata as { labels?: Record<string, string> }).labels ?? {};
    return k !== undefined && labels[k] === v;
  }

  private send(res: ServerResponse, e: Event): void {
    this.write(res, { type: e.type, object: e.object });
  }

  private write(res: ServerResponse, doc: unknown): void {
    res.write(`${JSON.stringify(doc)}\n`);
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message,
        reason,
        code,
      }),
    );
  }

  private handle(raw: string, auth: string | null, res: ServerResponse): void {
    const url = new URL(raw, 'https://x');
    const q = url.searchParams;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : null;
    const isWatch = q.get('watch') === '1' || q.get('watch') === 'true';
    this.asked.push({
      kind: isWatch ? 'watch' : 'list',
      resourceVersion: q.get('resourceVersion'),
      token,
      query: q,
    });
    if (url.pathname !== `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`) {
      this.status(res, 404, 'NotFound', `no such path ${url.pathname}`);
      return;
    }
    if (token === null || !this.tokens.has(token)) {
      this.status(res, 401, 'Unauthorized', 'Unauthorized');
      return;
    }
    if (this.failWith) {
      this.status(res, this.failWith, 'InternalError', 'stand-in failure');
      return;
    }
    const selector = q.get('labelSelector') ?? '';
    if (!isWatch) {
      this.list(res, selector, q);
      return;
    }
    const from = Number(q.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // as the API server does: the client knows the watch is open
    if (from < this.compacted) {
      this.write(res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${from} (${this.compacted})`,
          reason: 'Expired',
          code: 410,
        },
      });
      res.end();
      return;
    }
    for (const e of this.history)
      if (e.rv > from && this.matches(e.object, selector)) this.send(res, e);
    const w: Watcher = { res, selector };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  private list(res: ServerResponse, selector: string, q: URLSearchParams): void {
    const all = [...this.slices.values()].filter((o) => this.matches(o, selector));
    const limit = this.pageSize || Number(q.get('limit') ?? '0') || all.length;
    const start = Number(q.get('continue') ?? '0');
    const items = all.slice(start, start + limit);
    const more = start + limit < all.length;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'EndpointSliceList',
        apiVersion: 'discovery.k8s.io/v1',
        metadata: {
          resourceVersion: String(this.rv),
          ...(more ? { continue: String(start + limit) } : {}),
        },
        items,
      }),
    );
  }
}
