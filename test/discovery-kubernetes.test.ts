import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { servicesView } from '../src/admin/views.js';
import { monotonicClock } from '../src/clock.js';
import { parseConfig } from '../src/config/schema.js';
import { kubernetesSource } from '../src/discovery/kubernetes.js';
import { connection } from '../src/discovery/kubernetes-connection.js';
import { ConfigError } from '../src/errors.js';
import { runBalancer } from './helpers/cluster.js';
import {
  answering,
  discovering,
  namedOnOnePort,
  session,
  waitForBackends,
} from './helpers/discovery.js';
import { endpointSlice, KubeApi, NAMESPACE, SERVICE } from './helpers/kube-api.js';
import { readBytes, startLb, waitFor } from './helpers/servers.js';

/** A token file the test can rotate, holding `token-1`. */
function tokenFile(api: KubeApi): string {
  const f = join(api.pki.dir, 'token');
  writeFileSync(f, 'token-1\n');
  return f;
}

const watches = (api: KubeApi) => api.asked.filter((a) => a.kind === 'watch');
const lists = (api: KubeApi) => api.asked.filter((a) => a.kind === 'list');

async function kubeLb(t: TestContext, api: KubeApi, extra: Record<string, unknown> = {}) {
  const kubeconfig = api.kubeconfig(tokenFile(api));
  return startLb(
    t,
    discovering({ kind: 'kubernetes', kubeconfig, service: SERVICE, interval: '1h', ...extra }),
  );
}

test('kubernetes: list then watch; ready endpoints serve, terminating ones drain, zones are shown', async (t) => {
  const api = await KubeApi.start(t);
  const [a, b, c] = await namedOnOnePort(t, ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  if (!a || !b || !c) throw new Error('three backends');
  const ports = [
    { name: 'metrics', port: 9 },
    { name: 'http', port: a.port },
  ];
  const eps = [
    { ip: a.host, zone: 'zone-a' },
    { ip: b.host, zone: 'zone-b' },
    { ip: c.host, ready: false, serving: false },
  ];
  api.put(endpointSlice('web-abc', eps, ports));
  // Another Service's slice in the namespace: the label selector leaves it out.
  api.put(endpointSlice('other-x', [{ ip: '127.0.0.9' }], ports, { service: 'other' }));
  const lb = await kubeLb(t, api, { port: 'http' });
  const svc = lb.service('web');
  await waitForBackends(lb, [a.address, b.address]);
  const view = servicesView(lb).services[0];
  assert.equal(view?.backends.find((x) => x.address === a.address)?.zone, 'zone-a');
  assert.equal(view?.backends.find((x) => x.address === b.address)?.zone, 'zone-b');
  assert.equal(view?.discovery?.kind, 'kubernetes');
  assert.equal(view?.discovery?.target, `${SERVICE}:http`);
  const port = lb.address('web').port;
  assert.deepEqual([...(await answering(port, 6))].sort(), [a.address, b.address].sort());

  const list = lists(api)[0];
  assert.equal(list?.query.get('labelSelector'), `kubernetes.io/service-name=${SERVICE}`);
  assert.equal(list?.token, 'token-1');
  await waitFor(() => api.watching === 1, 5000, 'a watch');
  const w = watches(api)[0];
  assert.equal(w?.query.get('allowWatchBookmarks'), 'true');
  assert.equal(w?.resourceVersion, '102', "the watch starts at the list's resourceVersion");

  // c becomes ready: it joins through the watch, with no second list.
  api.put(endpointSlice('web-abc', [eps[0], eps[1], { ip: c.host }] as typeof eps, ports));
  await waitForBackends(lb, [a.address, b.address, c.address]);
  assert.equal(lists(api).length, 1);

  // A session on a; then a terminates, still serving: it drains, the session goes on.
  let onA: Awaited<ReturnType<typeof session>> | null = null;
  while (!onA) {
    const s = await session(port);
    if (s.backend === a.address) onA = s;
    else s.client.destroy();
  }
  api.put(
    endpointSlice(
      'web-abc',
      [
        { ip: a.host, ready: false, serving: true, terminating: true, zone: 'zone-a' },
        { ip: b.host, ready: false, serving: false },
        { ip: c.host },
      ],
      ports,
    ),
  );
  await waitFor(() => svc.backends.get(a.address)?.state === 'draining', 5000, 'a drains');
  // b, not serving and with no session open, is drained and gone at once.
  await waitFor(() => !svc.backends.get(b.address), 5000, 'b removed');
  assert.deepEqual([...(await answering(port, 6))], [c.address], 'new sessions go to c only');
  onA.client.write('ping');
  assert.equal((await readBytes(onA.client, 4)).toString(), 'ping', 'the session on a goes on');
  onA.client.end();
  await waitForBackends(lb, [c.address]);
});

test('kubernetes: bookmarks, a watch cut mid-stream, a rotated token, 410 Gone and API errors', async (t) => {
  const api = await KubeApi.start(t);
  const [a, b, c] = await namedOnOnePort(t, ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  if (!a || !b || !c) throw new Error('three backends');
  const ports = [{ name: '', port: a.port }];
  api.put(endpointSlice('web-1', [{ ip: a.host }], ports));
  const lb = await kubeLb(t, api); // no port: the slices' only one
  const svc = lb.service('web');
  const status = () => svc.discoveryStatus;
  await waitForBackends(lb, [a.address]);
  await waitFor(() => api.watching === 1, 5000, 'a watch');

  // A bookmark moves the resume point; the watch is cut in the middle of an event; a change
  // made meanwhile arrives, and the watch resumes from the bookmark without a list.
  const mark = api.bookmark();
  const before = watches(api).length;
  api.cutWatches();
  api.put(endpointSlice('web-1', [{ ip: a.host }, { ip: b.host }], ports));
  await waitForBackends(lb, [a.address, b.address]);
  assert.equal(watches(api)[before]?.resourceVersion, mark, 'resumed from the bookmark');
  assert.equal(lists(api).length, 1, 'no relist for a dropped watch');

  // The token is rotated on disk (the old one no longer valid): the next connection uses it.
  writeFileSync(join(api.pki.dir, 'token'), 'token-2\n');
  api.tokens = new Set(['token-2']);
  api.resetWatches();
  await waitFor(() => api.watching === 1, 10_000, 'a watch with the new token');
  assert.equal(watches(api).at(-1)?.token, 'token-2');

  // 410 Gone: the history the watch would resume from is compacted away: it relists.
  api.cutWatches();
  api.put(endpointSlice('web-1', [{ ip: b.host }, { ip: c.host }], ports));
  api.compact();
  await waitForBackends(lb, [b.address, c.address]);
  assert.equal(lists(api).length, 2, 'one relist after 410 Gone');
  await waitFor(() => api.watching === 1, 5000, 'watching again after the relist');

  // The server ends a watch (its timeoutSeconds ran out): a new one starts at once, no failure.
  const failures = status()?.failures ?? 0;
  const n = watches(api).length;
  const last = api.bookmark();
  api.endWatches();
  await waitFor(() => api.watching === 1 && watches(api).length > n, 5000, 'the next watch');
  assert.equal(watches(api).at(-1)?.resourceVersion, last);
  assert.equal(status()?.failures ?? 0, failures, 'a watch the server ends is no failure');

  // The API server fails: the last list stays, the failure is counted; then it recovers.
  api.failWith = 500;
  api.resetWatches();
  // The drop is a failure; so is each reconnect the server answers with its 500.
  await waitFor(
    () => /HTTP 500/.test(status()?.lastError ?? ''),
    5000,
    'the 500 counted as a failure',
  );
  assert.ok((status()?.failing ?? 0) > 0);
  assert.deepEqual(
    svc.backends.all.map((x) => x.address).sort(),
    [b.address, c.address].sort(),
    'the last good list stays',
  );
  api.failWith = 0;
  await waitFor(() => status()?.failing === 0, 15_000, 'answers again');
  api.put(endpointSlice('web-1', [{ ip: a.host }], ports));
  await waitForBackends(lb, [a.address]);
});

test('kubernetes: 2,500 endpoints over three slices, duplicates across them, slices deleted; lists in pages', async (t) => {
  const api = await KubeApi.start(t);
  api.pageSize = 2;
  const ip = (i: number) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const range = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, k) => ({ ip: ip(from + k), zone: `z${(from + k) % 3}` }));
  const ports = [{ name: 'pg', port: 5432 }];
  api.put(endpointSlice('web-a', range(0, 1000), ports));
  api.put(endpointSlice('web-b', range(1000, 2000), ports));
  // 50 endpoints of web-b again: the controller moving them between slices.
  api.put(endpointSlice('web-c', range(1950, 2500), ports));
  const lb = await kubeLb(t, api, { port: 'pg' });
  const svc = lb.service('web');
  await waitFor(() => svc.backends.all.length === 2500, 10_000, '2,500 backends');
  assert.equal(svc.discoveryStatus?.found, 2500);
  assert.equal(lists(api).length, 2, 'two pages of two and one slices');
  assert.equal(svc.backends.get(`${ip(2100)}:5432`)?.zone, 'z0');

  api.delete('web-b');
  // 1950-1999 stay: web-c has them too.
  await waitFor(() => svc.backends.all.length === 1550, 10_000, '1,550 backends');
  assert.ok(svc.backends.get(`${ip(1960)}:5432`));
  assert.ok(!svc.backends.get(`${ip(1500)}:5432`));
  api.put(endpointSlice('web-d', range(2500, 2600), ports));
  await waitFor(() => svc.backends.all.length === 1650, 10_000, 'a new slice adds its 100');
});

test('kubernetes: in-cluster, from the service account files and KUBERNETES_SERVICE_HOST', async (t) => {
  const api = await KubeApi.start(t);
  const dir = mkdtempSync(join(tmpdir(), 'blitz-sa-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ca.crt'), api.pki.ca.cert);
  writeFileSync(join(dir, 'token'), 'token-1');
  writeFileSync(join(dir, 'namespace'), `${NAMESPACE}\n`);
  api.put(endpointSlice('web-1', [{ ip: '127.0.0.5' }], [{ name: 'http', port: 8080 }]));
  const cfg = parseConfig(discovering({ kind: 'kubernetes', service: SERVICE, port: 8080 }), {
    source: '<test>',
    allowEphemeralListen: true,
  }).services[0]?.discovery;
  if (!cfg) throw new Error('no discovery');
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
  const source = kubernetesSource(cfg, monotonicClock, { env, dir });
  let changes = 0;
  const stop = source.watch?.(() => changes++);
  t.after(() => stop?.());
  const first = await source.lookup(AbortSignal.timeout(5000));
  assert.deepEqual(
    first.backends?.map((x) => x.address),
    ['127.0.0.5:8080'],
    'a port number is the endpoints own',
  );
  await waitFor(() => api.watching === 1, 5000, 'a watch');
  writeFileSync(join(dir, 'token'), 'token-2');
  api.tokens = new Set(['token-2']);
  api.cutWatches();
  await waitFor(() => api.watching === 1, 10_000, 'a watch with the rotated token');
  assert.equal(watches(api).at(-1)?.token, 'token-2');
  api.put(endpointSlice('web-1', [{ ip: '127.0.0.6' }], [{ name: 'http', port: 8080 }]));
  // The source says it changed; a lookup then answers the new list (or fails while the watch
  // reconnects: the runner keeps the last list then, and asks again).
  await waitFor(
    async () => {
      if (changes === 0) return false;
      const next = await source.lookup(AbortSignal.timeout(5000)).catch(() => null);
      return next?.backends?.map((x) => x.address).join() === '127.0.0.6:8080';
    },
    5000,
    'the new list',
  );

  const outside = kubernetesSource(cfg, monotonicClock, { env: {}, dir });
  await assert.rejects(
    outside.lookup(AbortSignal.timeout(5000)),
    /KUBERNETES_SERVICE_HOST is not set/,
  );
  writeFileSync(join(dir, 'token'), '');
  const noToken = kubernetesSource(cfg, monotonicClock, { env, dir });
  await assert.rejects(noToken.lookup(AbortSignal.timeout(5000)), /token .* is empty/);
});

test('kubernetes: a port name that no slice has is an error naming the ports there', async (t) => {
  const api = await KubeApi.start(t);
  api.put(
    endpointSlice(
      'web-1',
      [{ ip: '127.0.0.5' }],
      [
        { name: 'http', port: 8080 },
        { name: 'admin', port: 9000 },
      ],
    ),
  );
  const lb = await kubeLb(t, api, { port: 'htp' });
  const svc = lb.service('web');
  await waitFor(() => (svc.discoveryStatus?.failures ?? 0) > 0, 5000, 'a failure');
  assert.match(
    svc.discoveryStatus?.lastError ?? '',
    /no port "htp" \(its slices have http=8080, admin=9000\)/,
  );
});

test('kubernetes, with workers: one list and one watch, in the primary; every worker serves the pods found', async (t) => {
  const api = await KubeApi.start(t);
  const [a, b] = await namedOnOnePort(t, ['127.0.0.1', '127.0.0.2']);
  if (!a || !b) throw new Error('two backends');
  const ports = [{ name: 'http', port: a.port }];
  api.put(endpointSlice('web-1', [{ ip: a.host, zone: 'zone-a' }], ports));
  const kubeconfig = api.kubeconfig(tokenFile(api));
  const lb = await runBalancer(
    t,
    (port, adminPort) => `
[process]
workers = 2
shutdown_timeout = "5s"
[admin]
listen = "127.0.0.1:${adminPort}"
[services.web]
listen = "127.0.0.1:${port}"
health = { kind = "tcp", interval = "200ms" }
[services.web.discovery]
kind = "kubernetes"
kubeconfig = "${kubeconfig}"
service = "${SERVICE}"
port = "http"
`,
  );
  const serving = async (want: string[]) => {
    const got = await answering(lb.port, 12).catch(() => new Set<string>());
    return [...got].sort().join(' ') === [...want].sort().join(' ');
  };
  await waitFor(() => serving([a.address]), 10_000, 'a to serve in every worker');
  api.put(endpointSlice('web-1', [{ ip: a.host, zone: 'zone-a' }, { ip: b.host }], ports));
  await waitFor(() => serving([a.address, b.address]), 10_000, 'b to join in every worker');
  assert.equal(lists(api).length, 1, 'one list: the primary only');
  assert.equal(api.watching, 1, 'one watch: the primary only');
  const body = (await lb.admin('/api/services')).body as {
    services: { backends: { address: string; zone: string | null }[] }[];
  };
  const zones = Object.fromEntries(
    body.services[0]?.backends.map((x) => [x.address, x.zone]) ?? [],
  );
  assert.deepEqual(zones, { [a.address]: 'zone-a', [b.address]: null });
});

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, { source: 'c.toml' });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [...err.problems];
  }
}

test('kubernetes: config keys are validated, each with its place', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-kc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const svcWith = (discovery: unknown) => ({
    services: { web: { listen: '127.0.0.1:8080', discovery } },
  });
  const cases: [unknown, RegExp][] = [
    [{ kind: 'kubernetes' }, /discovery\.service: missing; kind = "kubernetes" needs service/],
    [
      { kind: 'kubernetes', service: 'Web_1' },
      /discovery\.service: expected a Kubernetes Service name/,
    ],
    [
      { kind: 'kubernetes', service: 'web', namespace: 'a.b' },
      /discovery\.namespace: expected a Kubernetes namespace name/,
    ],
    [{ kind: 'kubernetes', service: 'web', port: 0 }, /discovery\.port: must be 1-65535/],
    [
      { kind: 'kubernetes', service: 'web', port: 'HTTP' },
      /discovery\.port: expected a Kubernetes port name/,
    ],
    [
      { kind: 'kubernetes', service: 'web', kubeconfig: join(dir, 'nope') },
      /discovery\.kubeconfig: .*nope: no such file/,
    ],
    [
      { kind: 'kubernetes', service: 'web', context: 'prod' },
      /discovery\.context: only with kubeconfig/,
    ],
    [
      { kind: 'kubernetes', service: 'web', url: 'http://x/' },
      /discovery\.url: only for kind = "http"/,
    ],
    [
      { kind: 'dns', name: 'db.internal', port: 80, service: 'web' },
      /discovery\.service: only for kind = "kubernetes"/,
    ],
  ];
  for (const [d, want] of cases) {
    const got = problems(svcWith(d));
    assert.ok(
      got.some((p) => want.test(p)),
      `${JSON.stringify(d)}: expected ${want}, got ${JSON.stringify(got)}`,
    );
  }
  assert.deepEqual(problems(svcWith({ kind: 'kubernetes', service: 'web', port: 'http' })), []);
});

test('kubernetes: kubeconfig contexts, files beside it, client certificates; credential plugins refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-kc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
  writeFileSync(join(dir, 'client.pem'), 'CLIENT PEM');
  writeFileSync(join(dir, 'client.key'), 'CLIENT KEY');
  const file = join(dir, 'config');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod-cluster
  cluster: { server: "https://[::1]:6443", certificate-authority: ca.pem, tls-server-name: api.internal }
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: prod
  context: { cluster: prod-cluster, user: cert-user, namespace: payments }
- name: dev
  context: { cluster: dev-cluster, user: token-user }
- name: cloud
  context: { cluster: dev-cluster, user: exec-user }
users:
- name: cert-user
  user:
    client-certificate: client.pem
    client-key-data: ${Buffer.from('INLINE KEY').toString('base64')}
- name: token-user
  user: { token: "abc.def" }
- name: exec-user
  user:
    exec: { apiVersion: client.authentication.k8s.io/v1, command: aws }
`,
  );
  const target = (context: string | null, namespace: string | null = null) => ({
    namespace,
    service: 'web',
    port: null,
    kubeconfig: file,
    context,
  });
  const where = { env: {}, dir };
  const dev = await connection(target(null), where);
  assert.equal(dev.server.href, 'https://127.0.0.1:6443/');
  assert.equal(dev.insecure, true);
  assert.equal(await dev.token(), 'abc.def');
  assert.equal(dev.namespace, 'default', 'a context without a namespace means "default"');
  const prod = await connection(target('prod'), where);
  assert.equal(prod.server.hostname, '[::1]');
  assert.equal(prod.ca?.toString(), 'CA PEM', 'a relative path is beside the kubeconfig');
  assert.equal(prod.servername, 'api.internal');
  assert.equal(prod.cert?.toString(), 'CLIENT PEM');
  assert.equal(prod.key?.toString(), 'INLINE KEY');
  assert.equal(await prod.token(), null);
  assert.equal(prod.namespace, 'payments');
  assert.equal((await connection(target('prod', 'shop'), where)).namespace, 'shop');
  await assert.rejects(connection(target('cloud'), where), /credential plugin \(exec/);
  await assert.rejects(connection(target('nope'), where), /no context "nope"/);
  writeFileSync(file, 'kind: Config\nclusters: [\n');
  await assert.rejects(connection(target(null), where), /not a kubeconfig/);
});
