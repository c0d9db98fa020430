// Packages a balancer loads only when a feature asks for them. Each one loaded at start is
// heap that every major collection marks: under bulk traffic V8 runs one every 40-100 MB
// of socket buffers, so their size is CPU per GiB (docs/performance.md, "Why a goal is
// missed"; undici, loaded eagerly, once cost bulk 2x).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const lbModule = fileURLToPath(new URL('../src/load-balancer.js', import.meta.url));
const schemaModule = fileURLToPath(new URL('../src/config/schema.js', import.meta.url));

/** The npm packages a fresh process has loaded once a balancer with `raw` has started. */
function packagesAfterStart(raw: Record<string, unknown>): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    const { LoadBalancer } = await import(${JSON.stringify(lbModule)});
    const { parseConfig } = await import(${JSON.stringify(schemaModule)});
    const lb = new LoadBalancer(parseConfig(${JSON.stringify(raw)}, { source: '<test>', allowEphemeralListen: true }));
    await lb.start();
    const names = new Set();
    for (const k of Object.keys(createRequire(import.meta.url).cache)) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k);
      if (m) names.add(m[1]);
    }
    process.stdout.write(JSON.stringify([...names]));
    await lb.close(0);
    process.exit(0);
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as string[]);
      },
    );
  });
}

test('a plain balancer loads no YAML parser, HTTP client or Redis client at start', async () => {
  const loaded = await packagesAfterStart({
    log: { level: 'warn' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        backends: ['127.0.0.1:9'],
        health: { kind: 'none' },
        pool: { min_idle: 0 },
      },
    },
  });
  // The probe works: the logger is loaded by every balancer.
  assert.ok(loaded.includes('pino'), `pino among ${loaded.join(', ')}`);
  for (const lazy of ['yaml', 'undici', 'ioredis'])
    assert.ok(!loaded.includes(lazy), `${lazy} loaded at start: ${loaded.join(', ')}`);
});
