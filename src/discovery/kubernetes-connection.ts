import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { KubernetesTarget } from '../config/discovery.js';
import { isTable, type Table } from '../config/fields.js';
import { MAX_PEM_BYTES, readGuardedAsync, refusalOf } from '../config/guarded-file.js';
import { DiscoveryError } from './source.js';

/** Where a pod finds its service account's token, the cluster's CA and its namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What "in-cluster" reads: the environment and the service-account directory (a test's own in tests). */
export interface InCluster {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly dir: string;
}

/** How to reach one API server and who to be there. */
export interface KubeConnection {
  readonly server: URL;
  /** PEM of the CA that signed the API server's certificate; null: the system's CAs. */
  readonly ca: Buffer | null;
  readonly insecure: boolean;
  /** The name checked in the server's certificate, when not the URL's host. */
  readonly servername: string | null;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /**
   * The bearer token, read again at each request from its file (the kubelet
   * rewrites a projected token well before it expires), so a rotated token is
   * used from the next request on; null: none (a client certificate).
   */
  token(): Promise<string | null>;
  /** The namespace a target without one means. */
  readonly namespace: string;
  /** For logs and /api/services: "in-cluster" or "kubeconfig FILE (context C)". */
  readonly shown: string;
}

/** Token, CA, kubeconfig and its certificates: through the guarded reader (never a FIFO, at most 1 MiB). */
async function readText(file: string, what: string): Promise<string> {
  try {
    return (await readGuardedAsync(file, MAX_PEM_BYTES)).toString('utf8');
  } catch (err) {
    throw new DiscoveryError(`${what} ${file}: ${refusalOf(err).why}`);
  }
}

const tokenFrom = (file: string) => async (): Promise<string> => {
  const t = (await readText(file, 'token')).trim();
  if (t === '') throw new DiscoveryError(`token ${file} is empty`);
  return t;
};

/** In a pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's files. */
async function inCluster(target: KubernetesTarget, where: InCluster): Promise<KubeConnection> {
  const host = where.env.KUBERNETES_SERVICE_HOST;
  const port = where.env.KUBERNETES_SERVICE_PORT || '443';
  if (!host)
    throw new DiscoveryError(
      'not in a Kubernetes pod: KUBERNETES_SERVICE_HOST is not set (give kubeconfig = "FILE" to run outside a cluster)',
    );
  const ca = Buffer.from(await readText(join(where.dir, 'ca.crt'), 'CA'));
  const namespace =
    target.namespace ?? (await readText(join(where.dir, 'namespace'), 'namespace')).trim();
  const token = tokenFrom(join(where.dir, 'token'));
  await token(); // a missing token should fail the first lookup, not every request after it
  return {
    server: new URL(`https://${isIPv6(host) ? `[${host}]` : host}:${port}`),
    ca,
    insecure: false,
    servername: null,
    cert: null,
    key: null,
    token,
    namespace,
    shown: 'in-cluster',
  };
}

/** A named entry of a kubeconfig's clusters, contexts or users list. */
function named(doc: Table, list: string, name: string, file: string): Table {
  const entries = Array.isArray(doc[list]) ? doc[list] : [];
  const e = entries.find((x: unknown) => isTable(x) && x.name === name);
  const inner = isTable(e) ? e[list.slice(0, -1)] : undefined;
  if (!isTable(inner)) throw new DiscoveryError(`${file}: no ${list.slice(0, -1)} "${name}"`);
  return inner;
}

/** A PEM given inline (base64 in *-data) or as a file next to the kubeconfig. */
async function pem(t: Table, key: string, base: string): Promise<Buffer | null> {
  const data = t[`${key}-data`];
  if (typeof data === 'string') return Buffer.from(data, 'base64');
  const path = t[key];
  if (typeof path !== 'string') return null;
  return Buffer.from(await readText(isAbsolute(path) ? path : resolve(base, path), key));
}

/**
 * A kubeconfig file (YAML, as kubectl writes it): the context's cluster
 * (server, CA, tls-server-name, insecure-skip-tls-verify) and user (token,
 * tokenFile, or a client certificate). Credential plugins (exec,
 * auth-provider) are not run: a balancer should not spawn a cloud CLI.
 */
async function fromKubeconfig(target: KubernetesTarget, file: string): Promise<KubeConnection> {
  let doc: unknown;
  try {
    // Loaded here, at the first kubeconfig read, not at start: its 0.8 MB of heap would be
    // marked by every major collection of a balancer that never reads one (under bulk,
    // V8 runs one every 40-100 MB of socket buffers: docs/performance.md).
    const { parse: parseYaml } = await import('yaml');
    doc = parseYaml(await readText(file, 'kubeconfig'));
  } catch (err) {
    if (err instanceof DiscoveryError) throw err;
    throw new DiscoveryError(`${file}: not a kubeconfig: ${(err as Error).message}`);
  }
  if (!isTable(doc)) throw new DiscoveryError(`${file}: not a kubeconfig (no mapping at the top)`);
  const contextName = target.context ?? doc['current-context'];
  if (typeof contextName !== 'string' || contextName === '')
    throw new DiscoveryError(`${file}: no current-context (set context = "NAME")`);
  const ctx = named(doc, 'contexts', contextName, file);
  const cluster = named(doc, 'clusters', String(ctx.cluster), file);
  const user = typeof ctx.user === 'string' ? named(doc, 'users', ctx.user, file) : {};
  const base = dirname(file);
  let server: URL;
  try {
    server = new URL(String(cluster.server));
  } catch {
    throw new DiscoveryError(`${file}: cluster "${ctx.cluster}" has no valid server URL`);
  }
  if (server.protocol !== 'https:')
    throw new DiscoveryError(`${file}: server ${server.href}: only https:// is supported`);
  if (user.exec !== undefined || user['auth-provider'] !== undefined)
    throw new DiscoveryError(
      `${file}: user "${ctx.user}" uses a credential plugin (exec/auth-provider), which blitz-lb does not run; give it a token, tokenFile or client certificate`,
    );
  let token: () => Promise<string | null> = async () => null;
  if (typeof user.tokenFile === 'string')
    token = tokenFrom(isAbsolute(user.tokenFile) ? user.tokenFile : resolve(base, user.tokenFile));
  else if (typeof user.token === 'string') {
    const fixed = user.token;
    token = async () => fixed;
  }
  await token();
  return {
    server,
    ca: await pem(cluster, 'certificate-authority', base),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : null,
    cert: await pem(user, 'client-certificate', base),
    key: await pem(user, 'client-key', base),
    token,
    namespace:
      target.namespace ??
      (typeof ctx.namespace === 'string' && ctx.namespace !== '' ? ctx.namespace : 'default'),
    shown: `kubeconfig ${file} (context ${contextName})`,
  };
}

/** The API server and credentials for `target`: its kubeconfig, else the pod's own. */
export function connection(target: KubernetesTarget, where: InCluster): Promise<KubeConnection> {
  return target.kubeconfig === null
    ? inCluster(target, where)
    : fromKubeconfig(target, target.kubeconfig);
}
