import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { listen } from './servers.js';

/**
 * An in-process fault proxy in toxiproxy's vocabulary (toxiproxy itself
 * cannot be installed here). It sits between two peers on loopback and
 * applies one toxic to the bytes flowing downstream (target -> client) or
 * upstream (client -> target).
 */
export type Toxic =
  | { kind: 'latency'; ms: number }
  | { kind: 'bandwidth'; bytesPerSecond: number }
  | { kind: 'reset_peer'; afterBytes: number }
  | { kind: 'slow_close'; ms: number }
  | { kind: 'timeout' }
  | { kind: 'slicer'; size: number }
  | { kind: 'limit_data'; bytes: number };

export async function faultProxy(
  t: TestContext,
  targetPort: number,
  toxic: Toxic,
  stream: 'downstream' | 'upstream' = 'downstream',
): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    if (toxic.kind === 'timeout') {
      // Accepts and never answers, never forwards, never closes.
      client.pause();
      return;
    }
    const target = connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    // A reset or error takes the other side down; a clean close leaves it to finish the (delayed) writes.
    target.on('error', () => client.destroy());
    client.on('close', (hadError) => {
      if (hadError) target.destroy();
    });
    target.on('close', (hadError) => {
      if (hadError) client.destroy();
    });
    const [from, to] = stream === 'downstream' ? [target, client] : [client, target];
    const [plainFrom, plainTo] = stream === 'downstream' ? [client, target] : [target, client];
    plainFrom.pipe(plainTo);
    applyToxic(from, to, toxic);
  });
  return listen(t, server);
}

function applyToxic(from: Socket, to: Socket, toxic: Toxic): void {
  let seen = 0;
  let chain = Promise.resolve();
  const later = (ms: number, f: () => void): void => {
    chain = chain.then(() => new Promise<void>((r) => setTimeout(r, ms))).then(f);
  };
  from.on('data', (d: Buffer) => {
    switch (toxic.kind) {
      case 'latency':
        from.pause();
        later(toxic.ms, () => {
          to.write(d);
          from.resume();
        });
        return;
      case 'bandwidth':
        from.pause();
        later((d.length / toxic.bytesPerSecond) * 1000, () => {
          to.write(d);
          from.resume();
        });
        return;
      case 'reset_peer':
        // Resets the downstream peer once `afterBytes` would be exceeded (the chunk that crosses it is dropped).
        seen += d.length;
        if (seen > toxic.afterBytes) {
          from.pause();
          to.resetAndDestroy();
        } else to.write(d);
        return;
      case 'slicer':
        for (let i = 0; i < d.length; i += toxic.size) to.write(d.subarray(i, i + toxic.size));
        return;
      case 'limit_data':
        seen += d.length;
        to.write(seen > toxic.bytes ? d.subarray(0, d.length - (seen - toxic.bytes)) : d);
        if (seen >= toxic.bytes) {
          to.destroy();
          from.destroy();
        }
        return;
      default:
        to.write(d);
    }
  });
  from.on('end', () => {
    if (toxic.kind === 'slow_close') later(toxic.ms, () => to.end());
    else chain.then(() => to.end());
  });
}

/** A backend that closes each connection right after accepting it. */
export async function closeAfterAccept(t: TestContext): Promise<number> {
  return listen(
    t,
    createServer((s) => {
      s.on('error', () => {});
      s.destroy();
    }),
  );
}

/** Sockets in CLOSE_WAIT on this machine whose local or remote port is one of `ports`. */
export function closeWaitCount(ports: number[]): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '08') continue;
      const lp = Number.parseInt((f[1] ?? '').split(':')[1] ?? '', 16);
      const rp = Number.parseInt((f[2] ?? '').split(':')[1] ?? '', 16);
      if (ports.includes(lp) || ports.includes(rp)) n++;
    }
  }
  return n;
}

/** Resident memory of a process, in bytes. */
export function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Open descriptors of a process. */
export function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
