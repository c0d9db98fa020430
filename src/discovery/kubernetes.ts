import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../clock.js';
import type { DiscoveryConfig, KubernetesTarget } from '../config/discovery.js';
import { isTable } from '../config/fields.js';
import { GONE, getJson, KubeApiError, type WatchEvent, watch } from './kubernetes-client.js';
import {
  connection,
  type InCluster,
  type KubeConnection,
  SERVICE_ACCOUNT_DIR,
} from './kubernetes-connection.js';
import { backendsOf, parseSlice, type Slice } from './kubernetes-slices.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/** Slices a list page asks for (each up to 1,000 endpoints). */
const PAGE = 100;
/** Reconnects and relists back off from this, doubling, up to MAX_BACKOFF_MS, with jitter. */
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 30_000;
/** A watch asks the server to end it after 5 to 10 minutes (as client-go does), then resumes. */
const WATCH_MIN_S = 300;
/** A watch that ends this soon with nothing said is a failure, or a loop would spin. */
const SHORT_WATCH_MS = 1_000;

function backoffMs(failures: number): number {
  const cap = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(failures - 1, 20));
  return cap / 2 + Math.random() * (cap / 2);
}

function asDiscoveryError(err: unknown, what: string): DiscoveryError {
  if (err instanceof DiscoveryError) return err;
  return new DiscoveryError(`${what}: ${(err as Error).message}`);
}

/** What this source asks of the API: the RBAC a Role must grant it (examples/kubernetes/rbac.yaml). */
export const API_ACCESS = {
  group: 'discovery.k8s.io',
  version: 'v1',
  resource: 'endpointslices',
  verbs: ['list', 'watch'],
} as const;

/** The Service's EndpointSlices: the label the EndpointSlice controller puts on them. */
function slicesPath(ns: string, service: string): string {
  const { group, version, resource } = API_ACCESS;
  return `/apis/${group}/${version}/namespaces/${ns}/${resource}?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`;
}

/**
 * kind = "kubernetes": the EndpointSlices of one Service, listed, then
 * watched from the list's resourceVersion with bookmarks (the API's
 * "efficient detection of changes"). A watch that drops resumes from the
 * last resourceVersion seen (an event's or a bookmark's), backing off; a
 * "410 Gone" (the server no longer has history that old) relists. Events
 * are kept here as slices by name; each lookup answers the join of them
 * (kubernetes-slices.ts), so the runner and the driver diff it into the
 * service as for any other kind, and keep the last good list while the API
 * fails. It runs where discovery runs: the primary, under workers.
 */
export function kubernetesSource(
  cfg: DiscoveryConfig,
  clock: Clock,
  where: InCluster = { env: process.env, dir: SERVICE_ACCOUNT_DIR },
): Source {
  if (!cfg.kubernetes) throw new Error('kind = "kubernetes" without its target');
  const target: KubernetesTarget = cfg.kubernetes;
  let conn: KubeConnection | null = null;
  let namespace = target.namespace;
  let slices = new Map<string, Slice>();
  /** Where the watch resumes; null: list first. */
  let rv: string | null = null;
  /** The watch broke and has not reconnected: lookups fail (the last list stays) until it does. */
  let watchError: DiscoveryError | null = null;
  let listFailures = 0;
  let listWaitMs = 0;
  let notify: (() => void) | null = null;
  let loop: AbortController | null = null;
  /** The runner stopped it: a list that ends after that starts no watch. */
  let stopped = false;

  async function list(signal: AbortSignal): Promise<void> {
    const c = await connection(target, where);
    const ns = target.namespace ?? c.namespace;
    const base = `${slicesPath(ns, target.service)}&limit=${PAGE}`;
    const found = new Map<string, Slice>();
    let token = '';
    let version = '';
    do {
      const doc = await getJson(
        c,
        token === '' ? base : `${base}&continue=${encodeURIComponent(token)}`,
        signal,
        cfg.timeoutMs,
      );
      if (!isTable(doc) || !Array.isArray(doc.items) || !isTable(doc.metadata))
        throw new DiscoveryError('expected an EndpointSliceList');
      for (const item of doc.items) {
        const s = parseSlice(item);
        found.set(s.name, s);
      }
      version =
        typeof doc.metadata.resourceVersion === 'string' ? doc.metadata.resourceVersion : '';
      token = typeof doc.metadata.continue === 'string' ? doc.metadata.continue : '';
    } while (token !== '');
    if (version === '') throw new DiscoveryError('an EndpointSliceList without a resourceVersion');
    conn = c;
    namespace = ns;
    slices = found;
    rv = version;
  }

  function apply(e: WatchEvent): void {
    const obj = e.object;
    if (e.type === 'ERROR') {
      const st = isTable(obj) ? obj : {};
      throw new KubeApiError(
        `watch: ${typeof st.message === 'string' ? st.message : 'an ERROR event'}`,
        typeof st.code === 'number' ? st.code : 0,
      );
    }
    const meta = isTable(obj) && isTable(obj.metadata) ? obj.metadata : {};
    if (e.type === 'ADDED' || e.type === 'MODIFIED') {
      const s = parseSlice(obj);
      slices.set(s.name, s);
    } else if (e.type === 'DELETED') {
      if (typeof meta.name === 'string') slices.delete(meta.name);
    } else if (e.type !== 'BOOKMARK') return;
    if (typeof meta.resourceVersion === 'string') rv = meta.resourceVersion;
    if (e.type !== 'BOOKMARK') notify?.();
  }

  /** Watches from `rv` until stopped or told to relist; a drop reconnects after a backoff. */
  async function follow(ac: AbortController): Promise<void> {
    let failures = 0;
    while (!ac.signal.aborted && conn && rv !== null && namespace !== null) {
      const began = clock.now();
      let events = 0;
      const timeoutS = WATCH_MIN_S + Math.floor(Math.random() * WATCH_MIN_S);
      const path = `${slicesPath(namespace, target.service)}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=${timeoutS}`;
      try {
        await watch(
          conn,
          path,
          ac.signal,
          (timeoutS + 30) * 1000,
          () => {
            if (watchError === null) return;
            watchError = null;
            notify?.();
          },
          (e) => {
            events++;
            apply(e);
          },
        );
        if (events === 0 && clock.now() - began < SHORT_WATCH_MS)
          throw new DiscoveryError('watch: the server ended it at once');
        failures = 0;
      } catch (err) {
        if (ac.signal.aborted) return;
        if (err instanceof KubeApiError && err.status === GONE) {
          // Too old to resume from: list again (the lookup this wakes does it).
          rv = null;
          notify?.();
          return;
        }
        failures++;
        watchError = asDiscoveryError(err, 'watch');
        notify?.();
        try {
          await sleep(backoffMs(failures), undefined, { signal: ac.signal });
        } catch {
          return;
        }
      }
    }
  }

  function startWatch(): void {
    loop?.abort();
    if (stopped) return;
    const ac = new AbortController();
    loop = ac;
    watchError = null;
    void follow(ac);
  }

  const port = target.port === null ? '' : `:${target.port}`;
  return {
    target: `${target.namespace === null ? '' : `${target.namespace}/`}${target.service}${port}`,
    deadlineMs: () => cfg.timeoutMs + (rv === null ? listWaitMs : 0),
    async lookup(signal): Promise<Answer> {
      if (rv === null) {
        if (listWaitMs > 0) await sleep(listWaitMs, undefined, { signal });
        try {
          await list(signal);
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          listFailures++;
          listWaitMs = backoffMs(listFailures);
          throw asDiscoveryError(err, 'list');
        }
        listFailures = 0;
        listWaitMs = 0;
        startWatch();
      } else if (watchError) throw watchError;
      return { backends: backendsOf(slices.values(), target.port, cfg.backend), ttlMs: null };
    },
    watch(changed): () => void {
      notify = changed;
      return () => {
        stopped = true;
        notify = null;
        loop?.abort();
        loop = null;
      };
    },
  };
}
