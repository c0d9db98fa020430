import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { servicesView } from '../src/admin/views.js';
import { runCli, tempConfig } from './helpers/cli.js';
import {
  answering,
  captured,
  discovering,
  namedServer,
  session,
  waitForBackends,
} from './helpers/discovery.js';
import { readBytes, startLb, waitFor } from './helpers/servers.js';

interface Registry {
  url: string;
  requests: URL[];
  /** What the next requests get: a status and a body. */
  reply: { status: number; body: string; index?: number };
  /** Requests get no answer at all. */
  hang: boolean;
  /** Answers every blocking query held back now (the index changed). */
  release(): void;
}

/**
 * A registry on loopback. A request with `?index=N` equal to the current
 * index is held until `release()` or its `wait` runs out, as Consul does.
 */
async function registry(t: TestContext): Promise<Registry> {
  const held = new Set<{ res: ServerResponse; timer: NodeJS.Timeout }>();
  const reg: Registry = {
    url: '',
    requests: [],
    reply: { status: 200, body: '[]' },
    hang: false,
    release() {
      for (const h of held) {
        clearTimeout(h.timer);
        send(h.res);
      }
      held.clear();
    },
  };
  const send = (res: ServerResponse): void => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (reg.reply.index !== undefined) headers['x-consul-index'] = String(reg.reply.index);
    res.writeHead(reg.reply.status, headers);
    res.end(reg.reply.body);
  };
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    reg.requests.push(url);
    const index = url.searchParams.get('index');
    if (reg.hang) return;
    if (index !== null && Number(index) === reg.reply.index) {
      const waitS = Number.parseInt(url.searchParams.get('wait') ?? '300', 10);
      const h = {
        res,
        timer: setTimeout(() => {
          held.delete(h);
          send(res);
        }, waitS * 1000),
      };
      held.add(h);
      return;
    }
    send(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const h of held) clearTimeout(h.timer);
    server.closeAllConnections();
    server.close();
  });
  reg.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return reg;
}

test('http: the generic shape is polled; a 500 and bad JSON keep the last list; changes join and drain', async (t) => {
  const reg = await registry(t);
  const a = await namedServer(t, '127.0.0.1');
  const b = await namedServer(t, '127.0.0.1');
  const c = await namedServer(t, '127.0.0.1');
  reg.reply = {
    status: 200,
    body: JSON.stringify([a.address, { address: b.address, weight: 2 }]),
  };
  const lb = await startLb(
    t,
    discovering({ kind: 'http', url: `${reg.url}/backends`, interval: '100ms', timeout: '200ms' }),
  );
  const svc = lb.service('web');
  await waitForBackends(lb, [a.address, b.address]);
  assert.equal(svc.backends.get(b.address)?.weight, 2, "an entry's own settings apply");
  const port = lb.address('web').port;
  assert.deepEqual([...(await answering(port, 6))].sort(), [a.address, b.address].sort());

  const status = () => svc.discoveryStatus;
  for (const [reply, why] of [
    [{ status: 500, body: 'oops' }, /HTTP 500/],
    [{ status: 200, body: '[{"address": ' }, /bad JSON/],
    [{ status: 200, body: '{"backends": ["not an address"]}' }, /expected "host:port"/],
  ] as const) {
    const before = status()?.failures ?? 0;
    reg.reply = reply;
    await waitFor(() => (status()?.failures ?? 0) > before, 5000, `a failure (${why})`);
    assert.match(status()?.lastError ?? '', why);
    assert.deepEqual(
      svc.backends.all.map((x) => x.address).sort(),
      [a.address, b.address].sort(),
      'the last good list stays',
    );
  }

  // A registry that never answers: the lookup times out, the list stays.
  const before = status()?.failures ?? 0;
  reg.hang = true;
  await waitFor(() => (status()?.failures ?? 0) > before, 5000, 'a timeout');
  assert.match(status()?.lastError ?? '', /timed out after 200ms/);
  assert.equal(svc.backends.all.length, 2);
  reg.hang = false;

  // A session on a, then a leaves and c joins (the table shape, this time).
  let onA: Awaited<ReturnType<typeof session>> | null = null;
  while (!onA) {
    const s = await session(port);
    if (s.backend === a.address) onA = s;
    else s.client.destroy();
  }
  reg.reply = { status: 200, body: JSON.stringify({ backends: [b.address, c.address] }) };
  await waitFor(() => svc.backends.get(a.address)?.state === 'draining', 5000, 'a drains');
  assert.ok(svc.backends.get(c.address), 'c joined');
  onA.client.write('ping');
  assert.equal((await readBytes(onA.client, 4)).toString(), 'ping', 'the session on a goes on');
  assert.ok(!(await answering(port, 6)).has(a.address));
  onA.client.end();
  await waitForBackends(lb, [b.address, c.address]);
  assert.equal(status()?.failing, 0);
  assert.ok(status()?.lastSuccessAt);
  const view = servicesView(lb).services[0]?.discovery;
  assert.equal(view?.kind, 'http');
  assert.equal(view?.target, `${reg.url}/backends`);
  assert.equal(view?.backends, 2);
  assert.ok((view?.failures ?? 0) >= 3);
});

test('http: consul shape, with blocking queries that return when the index changes', async (t) => {
  const reg = await registry(t);
  const a = await namedServer(t, '127.0.0.1');
  const b = await namedServer(t, '127.0.0.1');
  const entry = (n: { host: string; port: number }, weight = 1, status = 'passing') => ({
    Node: { Node: 'n1', Address: '10.9.9.9' },
    Service: {
      ID: `web-${n.port}`,
      Service: 'web',
      Address: n.host,
      Port: n.port,
      Weights: { Passing: weight, Warning: 1 },
    },
    Checks: [{ Status: 'passing' }, { Status: status }],
  });
  reg.reply = { status: 200, body: JSON.stringify([entry(a)]), index: 7 };
  // interval = 1h: only a blocking query can bring the change in time.
  const lb = await startLb(
    t,
    discovering({
      kind: 'http',
      shape: 'consul',
      url: `${reg.url}/v1/health/service/web?passing`,
      interval: '1h',
      wait: '30s',
    }),
  );
  await waitForBackends(lb, [a.address]);
  await waitFor(
    () => reg.requests.some((u) => u.searchParams.get('index') === '7'),
    5000,
    'a blocking query at index 7',
  );
  const blocking = reg.requests.find((u) => u.searchParams.get('index') === '7');
  assert.equal(blocking?.searchParams.get('wait'), '30s');
  assert.ok(blocking?.searchParams.has('passing'), "the URL's own query is kept");

  reg.reply = {
    status: 200,
    body: JSON.stringify([
      entry(a),
      entry(b, 4),
      entry({ host: '127.0.0.1', port: 1 }, 1, 'critical'),
    ]),
    index: 8,
  };
  reg.release();
  await waitForBackends(lb, [a.address, b.address]);
  assert.equal(lb.service('web').backends.get(b.address)?.weight, 4, 'Weights.Passing');
  await waitFor(
    () => reg.requests.some((u) => u.searchParams.get('index') === '8'),
    5000,
    'the next blocking query carries the new index',
  );
  assert.deepEqual(
    [...(await answering(lb.address('web').port, 5))].sort(),
    [a.address, b.address].sort(),
  );

  // The registry fails: the list stays, the index starts over.
  reg.reply = { status: 500, body: 'no leader', index: 8 };
  reg.release();
  // Failures retry after min(interval, 1s).
  await waitFor(() => (lb.service('web').discoveryStatus?.failures ?? 0) >= 1, 5000, 'a failure');
  assert.match(lb.service('web').discoveryStatus?.lastError ?? '', /HTTP 500/);
  await waitForBackends(lb, [a.address, b.address]);
  const n = reg.requests.length;
  reg.reply = { status: 200, body: JSON.stringify([entry(b)]), index: 9 };
  await waitForBackends(lb, [b.address]);
  assert.equal(reg.requests[n]?.searchParams.has('index'), false, 'after a failure, no index');
});

test('http: the URL’s query string is used for the request, never shown (api, warnings, errors, check)', async (t) => {
  const reg = await registry(t);
  reg.reply = { status: 500, body: 'no' };
  const url = `${reg.url}/backends?token=s3cret&dc=one`;
  const { logger, lines } = captured('warn');
  const lb = await startLb(
    t,
    discovering({ kind: 'http', url, interval: '100ms', timeout: '200ms' }),
    { logger },
  );
  const svc = lb.service('web');
  await waitFor(() => (svc.discoveryStatus?.failures ?? 0) > 0, 5000, 'a failure');
  assert.equal(reg.requests[0]?.searchParams.get('token'), 's3cret', 'the request has the token');
  const shown = `${reg.url}/backends?…`;
  assert.equal(svc.discoveryStatus?.lastError, `${shown}: HTTP 500`);
  const view = servicesView(lb).services[0]?.discovery;
  assert.equal(view?.target, shown);
  await waitFor(() => lines.some((l) => l.msg.startsWith('discovery failed')), 5000, 'a warning');
  const everything = JSON.stringify([servicesView(lb), lines]);
  assert.ok(!everything.includes('s3cret'), everything);

  const file = tempConfig(
    t,
    `[services.web]\nlisten = "127.0.0.1:7000"\n[services.web.discovery]\nkind = "http"\nurl = "${url}"\n`,
  );
  const out = runCli(['check', '--config', file]);
  assert.match(out.stdout, new RegExp(`http ${reg.url}/backends\\?… \\(polled`));
  assert.ok(!out.stdout.includes('s3cret'), out.stdout);
});

test('http: consul shape names each backend by its Service.ID; an ID that is no valid name leaves the address', async (t) => {
  const reg = await registry(t);
  const a = await namedServer(t, '127.0.0.1');
  const b = await namedServer(t, '127.0.0.1');
  const entry = (n: { host: string; port: number }, id: string) => ({
    Node: { Node: 'n1', Address: '10.9.9.9' },
    Service: { ID: id, Service: 'web', Address: n.host, Port: n.port },
    Checks: [{ Status: 'passing' }],
  });
  reg.reply = {
    status: 200,
    body: JSON.stringify([entry(a, 'web-1'), entry(b, 'not a name')]),
    index: 3,
  };
  const lb = await startLb(
    t,
    discovering({
      kind: 'http',
      shape: 'consul',
      url: `${reg.url}/v1/health/service/web`,
      interval: '200ms',
    }),
  );
  await waitForBackends(lb, [a.address, b.address]);
  const s = lb.service('web');
  assert.equal(s.backends.get(a.address)?.name, 'web-1');
  assert.equal(s.backends.get(b.address)?.name, b.address);
  // The name holds across a re-registration under a new ID (a redeploy): the backend follows it.
  reg.reply = {
    status: 200,
    body: JSON.stringify([entry(a, 'web-2'), entry(b, 'web-3')]),
    index: 4,
  };
  reg.release();
  await waitFor(
    () =>
      s.backends.get(a.address)?.name === 'web-2' && s.backends.get(b.address)?.name === 'web-3',
    5000,
    'the new IDs as names',
  );
});
