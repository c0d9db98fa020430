import type { TestContext } from 'node:test';
import { type AdminOptions, AdminServer } from '../../src/admin/server.js';
import type { LoadBalancer } from '../../src/load-balancer.js';
import { createLogger } from '../../src/logger.js';

export interface AdminClient {
  admin: AdminServer;
  base: string;
  port: number;
  /** A request as the API's clients send it: writes carry the JSON content type. */
  call(
    method: string,
    path: string,
    body?: string,
    headers?: Record<string, string>,
  ): Promise<{
    status: number;
    /** The content-type header ('' when none). */
    type: string;
    text: string;
    json: () => ReturnType<typeof JSON.parse>;
  }>;
  /** GET /metrics' text. */
  metrics(headers?: Record<string, string>): Promise<string>;
}

/** An admin server on an OS-chosen loopback port in front of `lb`, closed after the test. */
export async function startAdmin(
  t: TestContext,
  lb: LoadBalancer,
  opts: Partial<AdminOptions> = {},
): Promise<AdminClient> {
  const admin = new AdminServer(lb, {
    listen: { host: '127.0.0.1', port: 0, address: '127.0.0.1:0' },
    token: null,
    reload: null,
    log: createLogger('silent'),
    ...opts,
  });
  await admin.start();
  t.after(() => admin.close());
  const port = admin.address().port;
  const base = `http://127.0.0.1:${port}`;
  const call: AdminClient['call'] = async (method, path, body, headers = {}) => {
    const write = method !== 'GET' && method !== 'HEAD';
    const all = write ? { 'content-type': 'application/json', ...headers } : headers;
    const r = await fetch(base + path, { method, body, headers: all });
    const text = await r.text();
    return {
      status: r.status,
      type: r.headers.get('content-type') ?? '',
      text,
      json: () => JSON.parse(text),
    };
  };
  return {
    admin,
    base,
    port,
    call,
    metrics: async (headers = {}) => (await call('GET', '/metrics', undefined, headers)).text,
  };
}

/** The value of one sample: `name{labels}` exactly as exposed (labels in their exposed order). */
export function value(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
