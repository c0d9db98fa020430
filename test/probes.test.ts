import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createRegistry } from '../src/admin/metrics.js';
import { servicesView } from '../src/admin/views.js';
import type { Backend } from '../src/backend/backend.js';
import { parseConfig } from '../src/config/schema.js';
import { converse } from '../src/health/exchange.js';
import { mysqlSteps } from '../src/health/mysql-probe.js';
import { sendExpectSteps } from '../src/health/send-expect.js';
import { smtpSteps } from '../src/health/smtp-probe.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { discovering, waitForBackends } from './helpers/discovery.js';
import { logLines } from './helpers/log-lines.js';
import {
  addr,
  echoServer,
  listen,
  openClient,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

type Raw = Record<string, unknown>;
const local = (port: number) => ({ host: '127.0.0.1', port });

/**
 * A line protocol: "HELLO" → "WELCOME v2", "STATUS" → "STATUS <status>",
 * each after `delayMs`. `status` can be changed while it runs.
 */
async function lineServer(t: Parameters<typeof listen>[0], delayMs = 0) {
  const state = { status: 'ok', seen: [] as string[] };
  const port = await scriptedServer(t, (s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        state.seen.push(line);
        const reply =
          line === 'HELLO' ? 'WELCOME v2' : line === 'STATUS' ? `STATUS ${state.status}` : 'ERR';
        setTimeout(() => s.writable && s.write(`${reply}\r\n`), delayMs);
      }
    });
    s.on('end', () => s.end());
  });
  return { port, state };
}

const STEPS = [
  { send: 'HELLO\r\n', expect: 'WELCOME' },
  { send: 'STATUS\r\n', expect_regex: '^STATUS (ok|degraded)\\r\\n' },
];

function steps(raw: Raw[]) {
  const c = parseConfig(svc(['127.0.0.1:1'], { health: { kind: 'send-expect', steps: raw } }), {
    allowEphemeralListen: true,
  });
  return sendExpectSteps(c.services[0]?.health.steps ?? []);
}

test('send-expect: a line protocol answers every step; a reply that never matches fails at the timeout, saying which step and what came', async (t) => {
  const { port, state } = await lineServer(t);
  const ok = await converse(local(port), steps(STEPS), 500, 'send-expect ok');
  assert.deepEqual([ok.ok, ok.detail], [true, 'send-expect ok']);
  assert.deepEqual(state.seen, ['HELLO', 'STATUS']);
  state.status = 'busy';
  const bad = await converse(local(port), steps(STEPS), 300, 'send-expect ok');
  assert.equal(bad.ok, false);
  assert.match(
    bad.detail,
    /^timeout 300ms waiting for step 2 expect_regex \/\^STATUS \(ok\|degraded\)\\r\\n\/ \(got "STATUS busy\.\."\)$/,
  );
  // Expectations are on bytes: hex on both sides.
  state.status = 'ok';
  const hex = await converse(
    local(port),
    steps([{ send_hex: '48 45 4c 4c 4f 0d 0a', expect_hex: '57454c434f4d45' }]),
    500,
    'ok',
  );
  assert.equal(hex.ok, true);
});

test('send-expect: each step has the whole timeout (two 200 ms replies pass a 300 ms timeout); a server that closes fails at once', async (t) => {
  const { port } = await lineServer(t, 200);
  const r = await converse(local(port), steps(STEPS), 300, 'ok');
  assert.equal(r.ok, true, r.detail);
  assert.ok(r.latencyMs >= 400, `two slow steps took ${r.latencyMs} ms`);
  const closer = await scriptedServer(t, (s) => s.end('BYE\r\n'));
  const c = await converse(local(closer), steps(STEPS), 5000, 'ok');
  assert.equal(c.ok, false);
  assert.match(c.detail, /^closed by the server before step 1 expect "WELCOME"/);
  assert.ok(c.latencyMs < 1000);
});

test('smtp: a multi-line 220 banner passes and is followed by QUIT; a 554 banner fails with its text', async (t) => {
  const got: string[] = [];
  const good = await scriptedServer(t, (s) => {
    s.write('220-mx.example.org ESMTP\r\n220 ready\r\n');
    s.on('data', (d: Buffer) => got.push(d.toString()));
    s.on('end', () => s.end());
  });
  const r = await converse(local(good), smtpSteps(), 500, 'smtp ok');
  assert.equal(r.ok, true, r.detail);
  await waitFor(() => got.join('') === 'QUIT\r\n', 2000, 'QUIT');
  const busy = await scriptedServer(t, (s) => s.end('554 5.3.2 too busy\r\n'));
  const b = await converse(local(busy), smtpSteps(), 500, 'smtp ok');
  assert.deepEqual([b.ok, b.detail], [false, 'smtp: 554 5.3.2 too busy']);
});

test('mysql: a greeting that is an error packet (too many connections) fails with the server message', async (t) => {
  const msg = Buffer.from('Too many connections');
  const payload = Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), msg]);
  const head = Buffer.from([payload.length, 0, 0, 0]);
  const port = await scriptedServer(t, (s) => s.end(Buffer.concat([head, payload])));
  const r = await converse(local(port), mysqlSteps(), 500, 'mysql ok');
  assert.deepEqual([r.ok, r.detail], [false, 'mysql: error 1040 Too many connections']);
  const http = await scriptedServer(t, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  const h = await converse(local(http), mysqlSteps(), 500, 'mysql ok');
  assert.equal(h.ok, false);
  assert.match(h.detail, /^mysql: not a protocol-10 handshake/);
});

test('health port: probes go to a sidecar port; its failure takes the backend down while the served port still listens', async (t) => {
  const served = await echoServer(t);
  let status = 200;
  const sidecar = createHttpServer((req, res) => {
    req.resume();
    res.statusCode = status;
    res.end();
  });
  const sidecarPort = await listen(t, sidecar as unknown as Server);
  const lb = await startLb(
    t,
    svc([addr(served)], {
      health: { kind: 'http', path: '/ready', port: sidecarPort, interval: '1h', fall: 1, rise: 1 },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.all[0] as Backend;
  await s.probeNow();
  assert.equal(b.healthy, true);
  status = 503;
  await s.probeNow();
  assert.equal(b.healthy, false);
  assert.equal(b.downReason, 'probe: HTTP 503');
});

test('health address: probes go to another host (127.0.0.2) than the one served', async (t) => {
  const served = await echoServer(t);
  // A probe target only on 127.0.0.2, at the served port's number: the probe must go there.
  const other = createServer((c) => c.destroy());
  other.listen(served, '127.0.0.2');
  await once(other, 'listening');
  t.after(() => other.close());
  const lb = await startLb(
    t,
    svc([addr(served)], { health: { kind: 'tcp', address: '127.0.0.2', interval: '1h', fall: 1 } }),
  );
  const s = lb.service('web');
  const b = s.backends.all[0] as Backend;
  await s.probeNow();
  assert.equal(b.lastCheck?.ok, true);
  other.close();
  await once(other, 'close');
  await s.probeNow();
  assert.equal(b.healthy, false);
  assert.equal(b.downReason, 'probe: ECONNREFUSED');
});

/** A tiny agent: answers `reply.line` to each connection, then closes. */
async function agent(t: Parameters<typeof listen>[0]) {
  const reply = { line: 'up' };
  const port = await scriptedServer(t, (s) => s.end(`${reply.line}\n`));
  return { port, reply };
}

test('agent check: weight percentages, drain, ready, maint (sessions ended), down#reason and up, through the admin operations', async (t) => {
  const be = await echoServer(t);
  const ag = await agent(t);
  const lb = await startLb(
    t,
    svc([{ address: addr(be), weight: 4 }], {
      health: { kind: 'tcp', interval: '1h', rise: 1, agent_port: ag.port, agent_interval: '1h' },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.all[0] as Backend;
  const say = async (line: string) => {
    ag.reply.line = line;
    await s.probeNow();
  };
  await say('up 75%');
  assert.deepEqual([b.state, b.weight], ['up', 3]);
  assert.equal(b.lastAgent?.detail, 'up 75%');
  await say('drain');
  assert.equal(b.state, 'draining');
  await say('ready 100%');
  assert.deepEqual([b.state, b.weight], ['up', 4]);

  const client = await openClient(lb.address('web').port);
  client.write('x');
  await once(client, 'data');
  await say('maint');
  assert.equal(b.state, 'disabled');
  await waitFor(() => client.destroyed, 2000, 'maint ends open sessions');
  await say('ready');
  assert.equal(b.state, 'up');

  await say('down#disk full');
  assert.deepEqual([b.state, b.downReason], ['down', 'agent: down (disk full)']);
  // Probes pass, yet the agent's down holds.
  await s.probeNow();
  assert.equal(b.healthy, false, 'held down while the agent says down');
  await say('up');
  assert.equal(b.state, 'up');
  const view = servicesView(lb).services[0]?.backends[0];
  assert.equal(view?.agent?.reply, 'up');
});

test('agent check: percentages of a discovered backend are of its discovered weight, not of the last one the agent set', async (t) => {
  const be = await echoServer(t);
  const ag = await agent(t);
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'backends.json');
  writeFileSync(file, JSON.stringify([{ address: addr(be), weight: 10 }]));
  const lb = await startLb(
    t,
    discovering(
      { kind: 'file', path: file, interval: '1h' },
      {
        health: { kind: 'tcp', interval: '1h', rise: 1, agent_port: ag.port, agent_interval: '1h' },
      },
    ),
  );
  await waitForBackends(lb, [addr(be)]);
  const s = lb.service('web');
  const b = s.backends.get(addr(be)) as Backend;
  const say = async (line: string) => {
    ag.reply.line = line;
    await s.probeNow();
  };
  await say('up 50%');
  assert.equal(b.weight, 5);
  await say('up 100%');
  assert.equal(b.weight, 10, '100% is the whole discovered weight again');
});

test('agent check: a reply still on its way when a reload removes the agent is dropped', async (t) => {
  const be = await echoServer(t);
  let asked: () => void = () => {};
  const askedP = new Promise<void>((r) => {
    asked = r;
  });
  const held: Socket[] = [];
  const agentPort = await scriptedServer(t, (s) => {
    held.push(s);
    asked();
  });
  const withAgent = svc([addr(be)], {
    health: { kind: 'tcp', interval: '1h', rise: 1, agent_port: agentPort, agent_interval: '1h' },
  });
  const lb = await startLb(t, withAgent);
  const s = lb.service('web');
  const b = s.backends.all[0] as Backend;
  const inFlight = s.probeNow();
  await askedP;
  await lb.reload(
    parseConfig(svc([addr(be)], { health: { kind: 'tcp', interval: '1h', rise: 1 } }), {
      source: '<test>',
      allowEphemeralListen: true,
    }),
  );
  for (const c of held) c.end('down#late\n');
  await inFlight;
  assert.equal(b.lastAgent?.detail ?? null, null, 'the late reply is not even shown');
  assert.deepEqual([b.state, b.downReason ?? null], ['up', null], 'no agent holds it down');
});

test('agent check: a removed backend is not kept by the agent checker (collected after removal)', async (t) => {
  const be = await echoServer(t);
  const other = await echoServer(t);
  const ag = await agent(t);
  ag.reply.line = 'up 50%';
  const lb = await startLb(
    t,
    svc([addr(be)], {
      health: { kind: 'tcp', interval: '1h', rise: 1, agent_port: ag.port, agent_interval: '1h' },
    }),
  );
  const s = lb.service('web');
  const ref = ((): WeakRef<Backend> => {
    const b = lb.addBackend('web', addr(other), { weight: 4 });
    return new WeakRef(b);
  })();
  await s.probeNow();
  assert.equal(ref.deref()?.weight, 2, 'the agent answered for it');
  lb.removeBackend('web', addr(other));
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with --expose-gc');
  await waitFor(
    () => {
      gc();
      return ref.deref() === undefined;
    },
    3000,
    'the removed backend collected',
  );
});

test('agent check: an unreachable agent leaves the backend as it is and says why', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(
    t,
    svc([addr(be)], { health: { kind: 'tcp', interval: '1h', agent_port: await refusedPort() } }),
  );
  const s = lb.service('web');
  await s.probeNow();
  const b = s.backends.all[0] as Backend;
  assert.equal(b.state, 'up');
  assert.deepEqual([b.lastAgent?.ok, b.lastAgent?.detail], [false, 'ECONNREFUSED']);
});

/** A backend whose listener can be closed while its open connections stay (probes fail, sessions live). */
async function closableEcho(t: Parameters<typeof listen>[0]) {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const port = await listen(t, server);
  return { port, stopListening: () => server.close() };
}

async function echoSession(port: number): Promise<Socket> {
  const c = await openClient(port);
  c.write('hello');
  await once(c, 'data');
  return c;
}

for (const onDown of [undefined, 'shutdown-sessions'] as const) {
  test(`on_down = ${onDown ?? '(default)'}: a backend marked down ${onDown ? 'loses its open sessions, logged as backend-down' : 'keeps its open sessions'}`, async (t) => {
    const be = await closableEcho(t);
    const log = logLines();
    const raw = svc([addr(be.port)], {
      health: { kind: 'tcp', interval: '1h', fall: 1, ...(onDown ? { on_down: onDown } : {}) },
    });
    const lb = new LoadBalancer(
      parseConfig(
        { ...raw, log: { level: 'silent', access: true } },
        { allowEphemeralListen: true },
      ),
      { logger: log.logger },
    );
    await lb.start();
    t.after(() => lb.close(0));
    const s = lb.service('web');
    const c = await echoSession(lb.address('web').port);
    be.stopListening();
    await s.probeNow();
    assert.equal(s.backends.all[0]?.healthy, false);
    if (onDown) {
      await waitFor(() => c.destroyed, 2000, 'the session to end');
      assert.equal(s.counters.endedBackendDown, 1);
      await waitFor(() => log.access().length === 1, 2000, 'its access line');
      assert.equal(log.access()[0]?.cause, 'backend-down');
    } else {
      c.write('still');
      assert.equal(((await once(c, 'data')) as [Buffer])[0].toString(), 'still');
      assert.equal(s.counters.endedBackendDown, 0);
      c.destroy();
    }
  });
}

test('on_up_primary = "shutdown-backup-sessions": a primary back up ends the sessions on backups; new ones go to the primary', async (t) => {
  const primaryPort = await refusedPort();
  const backup = await echoServer(t);
  const lb = await startLb(
    t,
    svc([addr(primaryPort), { address: addr(backup), backup: true }], {
      health: {
        kind: 'tcp',
        interval: '1h',
        fall: 1,
        rise: 1,
        on_up_primary: 'shutdown-backup-sessions',
      },
    }),
  );
  const s = lb.service('web');
  await s.probeNow();
  const onBackup = await echoSession(lb.address('web').port);
  assert.equal(s.backends.get(addr(backup))?.active, 1);
  const primary = createServer((c) => {
    c.on('error', () => {});
    c.pipe(c);
  });
  primary.listen(primaryPort, '127.0.0.1');
  await once(primary, 'listening');
  t.after(() => primary.close());
  await s.probeNow();
  await waitFor(() => onBackup.destroyed, 2000, 'the backup session to end');
  assert.equal(s.counters.endedPrimaryBack, 1);
  const next = await echoSession(lb.address('web').port);
  assert.equal(s.backends.get(addr(primaryPort))?.active, 1);
  next.destroy();
});

test('/api/services and /metrics: the probe kind, the last failure cause', async (t) => {
  const { port, state } = await lineServer(t);
  const lb = await startLb(
    t,
    svc([addr(port)], {
      health: { kind: 'send-expect', steps: STEPS, interval: '1h', timeout: '200ms' },
    }),
  );
  state.status = 'busy';
  await lb.service('web').probeNow();
  state.status = 'ok';
  await lb.service('web').probeNow();
  const v = servicesView(lb).services[0];
  assert.equal(v?.health, 'send-expect');
  assert.equal(v?.backends[0]?.lastCheck?.ok, true);
  assert.match(v?.backends[0]?.lastFailure?.detail ?? '', /^timeout 200ms waiting for step 2/);
  const text = await createRegistry(lb).metrics();
  assert.match(text, /blitz_lb_health_check_info\{service="web",kind="send-expect",agent="no"\} 1/);
  assert.match(
    text,
    /blitz_lb_backend_last_check_failure_timestamp_seconds\{service="web",backend="127\.0\.0\.1:\d+",kind="send-expect",cause="timeout 200ms waiting for step 2.*"\} \d+$/m,
  );
});

test('check: a regex that does not compile, hex that is not hex, ports out of range, an agent without an address where one is needed', () => {
  const bad = (health: Raw): string => {
    try {
      parseConfig(svc(['127.0.0.1:1'], { health }), { allowEphemeralListen: true });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  assert.match(
    bad({ kind: 'send-expect', steps: [{ send: 'x', expect_regex: '(unclosed' }] }),
    /health\.steps\[0\]\.expect_regex: does not compile: .*Unterminated group/,
  );
  assert.match(
    bad({ kind: 'send-expect', steps: [{ send_hex: '0g' }, { expect_hex: 'abc' }] }),
    /steps\[0\]\.send_hex: expected pairs of hex digits[\s\S]*steps\[1\]\.expect_hex: expected pairs of hex digits/,
  );
  assert.match(bad({ port: 70000 }), /health\.port: must be 1-65535, got 70000/);
  assert.match(bad({ agent_port: 0 }), /health\.agent_port: must be 1-65535, got 0/);
  assert.match(
    bad({ address: '10.0.0.9', agent_port: 5555 }),
    /health\.agent_port: probes go to address = "10\.0\.0\.9", so say where the agent is too/,
  );
  assert.equal(bad({ address: '10.0.0.9', agent_port: 5555, agent_address: '10.0.0.9' }), '');
  assert.match(bad({ agent_address: 'x.internal' }), /health\.agent_address: needs agent_port/);
  assert.match(bad({ kind: 'send-expect' }), /needs steps = /);
  assert.match(
    bad({ kind: 'tcp', role: 'master' }),
    /health\.role: applies to kind = "redis" only/,
  );
  assert.match(bad({ on_down: 'kill' }), /on_down: expected one of none \| shutdown-sessions/);
  assert.match(bad({ address: 'a b' }), /health\.address: expected a host name or IP address/);
});

test('blitz-lb check: a bad health table fails with the file name and the key', (t) => {
  const file = tempConfig(
    t,
    `[services.db]\nlisten = "127.0.0.1:7000"\nbackends = ["127.0.0.1:7001"]\n[services.db.health]\nkind = "send-expect"\nsteps = [{ send = "PING\\r\\n", expect_regex = "+PONG" }]\n`,
  );
  const r = runCli(['check', '--config', file]);
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /config\.toml: services\.db\.health\.steps\[0\]\.expect_regex: does not compile/,
  );
});

test('blitz-lb check: the summary names the probe, its target, the agent, on_down and allow/deny', (t) => {
  const file = tempConfig(
    t,
    `[services.db]\nlisten = "127.0.0.1:7000"\nbackends = ["127.0.0.1:7001"]\nallow = ["10.0.0.0/8"]\n[services.db.health]\nkind = "redis"\nrole = "master"\nport = 7002\nagent_port = 7003\non_down = "shutdown-sessions"\n`,
  );
  const r = runCli(['check', '--config', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /health redis \(role master, probes \(backend\):7002, agent \(backend\):7003, on_down shutdown-sessions\), pool min_idle 2 max_idle 10, allow 10\.0\.0\.0\/8, deny \(none\)/,
  );
});
