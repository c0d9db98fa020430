import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { createRegistry } from '../src/admin/metrics.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { encodeV1, encodeV2, type ProxyAddresses } from '../src/proxy/proxy-protocol.js';
import { logLines } from './helpers/log-lines.js';
import { addr, echoServer, exchange, svc, waitFor } from './helpers/servers.js';

type Raw = Record<string, unknown>;

/** A balancer on `listen` with one echo backend, logging to `lines`; `extra` are service keys. */
async function start(t: Parameters<typeof echoServer>[0], extra: Raw, listen = '127.0.0.1:0') {
  const be = await echoServer(t);
  const log = logLines();
  const raw = (x: Raw): Raw => {
    const c = svc([addr(be)], { listen, ...x });
    return { ...c, log: { level: 'silent', access: true } };
  };
  const lb = new LoadBalancer(parseConfig(raw(extra), { allowEphemeralListen: true }), {
    logger: log.logger,
  });
  await lb.start();
  t.after(() => lb.close(0));
  const reload = (x: Raw) => lb.reload(parseConfig(raw(x), { allowEphemeralListen: true }));
  return { lb, log, port: lb.address('web').port, reload, backend: be };
}

/** An open echo session from `from`: resolves once its first echo came back. */
async function openSession(port: number, from: string): Promise<Socket> {
  const c = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: true });
  c.on('error', () => {});
  await once(c, 'connect');
  c.write('one');
  const [d] = (await once(c, 'data')) as [Buffer];
  assert.equal(d.toString(), 'one');
  return c;
}

async function metricLine(lb: LoadBalancer, re: RegExp): Promise<string | undefined> {
  const text = await createRegistry(lb).metrics();
  return text.split('\n').find((l) => re.test(l));
}

test('allow/deny: deny wins over allow; a denied client is refused at accept, counted, access-logged, and its backend never dialled', async (t) => {
  const { lb, log, port } = await start(t, { allow: ['127.0.0.0/8'], deny: ['127.0.0.2'] });
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1'), 'hi');
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.3'), 'hi');
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.2'), '');
  const s = lb.service('web');
  assert.equal(s.counters.refusedDenied, 1);
  assert.equal(
    s.backends.all[0]?.sessionsTotal,
    2,
    'only the two allowed clients reached the backend',
  );
  await waitFor(() => log.access().length === 3, 3000, 'three access lines');
  const refused = log.access().filter((l) => l.cause === 'refused-denied');
  assert.equal(refused.length, 1);
  assert.match(String(refused[0]?.client), /^127\.0\.0\.2:\d+$/);
  assert.equal(refused[0]?.backend, null);
  assert.match((await metricLine(lb, /^blitz_lb_refused_total\{.*reason="denied"/)) ?? '', / 1$/);
});

test('allow only: IPv4 clients on a dual-stack listener (IPv4-mapped) are matched as IPv4; ::1 is matched as IPv6', async (t) => {
  const { lb, port, reload } = await start(t, { allow: ['127.0.0.1/32'] }, '[::]:0');
  // On "::" an IPv4 client's address is "::ffff:127.0.0.1": the rule "127.0.0.1/32" must still admit it.
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1'), 'hi');
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.2'), '');
  assert.equal(await exchange(port, '::1', '::1'), '');
  assert.equal(lb.service('web').counters.refusedDenied, 2);
  // A rule written as a mapped IPv6 range is an IPv4 rule too.
  await reload({ allow: ['::1'], deny: ['::ffff:127.0.0.2/128'] });
  assert.equal(await exchange(port, '::1', '::1'), 'hi');
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1'), '', 'not in allow any more');
  await reload({ deny: ['::ffff:127.0.0.2/128'] });
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1'), 'hi');
  assert.equal(
    await exchange(port, '127.0.0.1', '127.0.0.2'),
    '',
    'the mapped deny rule matches an IPv4 client',
  );
  assert.equal(lb.service('web').counters.refusedDenied, 4);
});

for (const version of ['v1', 'v2'] as const) {
  test(`allow/deny behind PROXY ${version}: the address the trusted sender names is the one judged`, async (t) => {
    const { lb, log, port } = await start(t, {
      accept_proxy: true,
      trusted_proxies: ['127.0.0.1'],
      deny: ['203.0.113.0/24'],
    });
    const enc = version === 'v1' ? encodeV1 : encodeV2;
    const from = (srcAddr: string): ProxyAddresses => ({
      family: srcAddr.includes(':') ? 'TCP6' : 'TCP4',
      srcAddr,
      srcPort: 40000,
      dstAddr: srcAddr.includes(':') ? '::ffff:127.0.0.1' : '127.0.0.1',
      dstPort: port,
    });
    assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1', enc(from('198.51.100.1'))), 'hi');
    assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1', enc(from('203.0.113.7'))), '');
    // The same client as an IPv4-mapped IPv6 address is the same client.
    assert.equal(
      await exchange(port, '127.0.0.1', '127.0.0.1', enc(from('::ffff:203.0.113.9'))),
      '',
    );
    assert.equal(lb.service('web').counters.refusedDenied, 2);
    await waitFor(() => log.access().length === 3, 3000, 'three access lines');
    const refused = log.access().filter((l) => l.cause === 'refused-denied');
    assert.deepEqual(
      refused.map((l) => String(l.client).replace(/:\d+$/, '')),
      ['203.0.113.7', '203.0.113.9'],
    );
  });
}

test('reload: new allow/deny lists leave open sessions alone; apply_to_open = true ends the ones now denied', async (t) => {
  const { lb, log, port, reload } = await start(t, {});
  const two = await openSession(port, '127.0.0.2');
  const one = await openSession(port, '127.0.0.1');
  await reload({ deny: ['127.0.0.2'] });
  assert.equal(
    await exchange(port, '127.0.0.1', '127.0.0.2'),
    '',
    'new clients from .2 are refused',
  );
  two.write('still');
  assert.equal(
    ((await once(two, 'data')) as [Buffer])[0].toString(),
    'still',
    'the open one carries on',
  );

  await reload({ deny: ['127.0.0.2/32', '10.0.0.0/8'], apply_to_open: true });
  await waitFor(() => two.destroyed, 3000, 'the denied session to close');
  one.write('alive');
  assert.equal(
    ((await once(one, 'data')) as [Buffer])[0].toString(),
    'alive',
    'an allowed client is untouched',
  );
  const s = lb.service('web');
  assert.equal(s.counters.endedDenied, 1);
  assert.equal(s.activeSessions, 1);
  await waitFor(() => log.access().some((l) => l.cause === 'denied'), 3000, 'the denied line');
  assert.match(String(log.access().find((l) => l.cause === 'denied')?.client), /^127\.0\.0\.2:/);
  one.destroy();
});

test('allow/deny: check names each bad entry', () => {
  assert.throws(
    () =>
      parseConfig(
        svc(['127.0.0.1:1'], {
          allow: ['10.0.0.0/33', 'nope'],
          deny: '10.0.0.1',
          apply_to_open: 1,
        }),
        { allowEphemeralListen: true },
      ),
    (err: Error) => {
      assert.match(err.message, /services\.web\.allow\[0\]: expected a CIDR/);
      assert.match(err.message, /services\.web\.allow\[1\]: expected a CIDR/);
      assert.match(err.message, /services\.web\.deny: expected an array of CIDRs/);
      assert.match(err.message, /services\.web\.apply_to_open: expected true or false/);
      return true;
    },
  );
});
