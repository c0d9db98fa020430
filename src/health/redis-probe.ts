import type { Step, StepVerdict } from './exchange.js';

/** The first line of a reply, without CRLF; null until it is complete. */
function firstLine(got: Buffer): string | null {
  const end = got.indexOf('\r\n');
  return end < 0 ? null : got.toString('latin1', 0, end);
}

function pong(got: Buffer): StepVerdict {
  const line = firstLine(got);
  if (line === null) return null;
  // -NOAUTH, -LOADING, -MASTERDOWN…: the server says why it cannot serve.
  return line === '+PONG' ? true : `redis: ${line.slice(0, 120)}`;
}

/** INFO replication answers a bulk string; the role line decides. */
function master(got: Buffer): StepVerdict {
  const line = firstLine(got);
  if (line === null) return null;
  if (!line.startsWith('$')) return `redis: ${line.slice(0, 120)}`;
  const len = Number(line.slice(1));
  const bodyStart = line.length + 2;
  if (!Number.isInteger(len) || len < 0) return `redis: bad INFO reply ${line.slice(0, 40)}`;
  if (got.length < bodyStart + len) return null;
  const role = /^role:(\w+)/m.exec(got.toString('latin1', bodyStart, bodyStart + len))?.[1];
  return role === 'master' ? true : `redis: role:${role ?? 'unknown'}, not master`;
}

/**
 * kind = "redis": PING must answer +PONG; with role = "master", INFO
 * replication must also say role:master, so that after a failover (REPLICAOF
 * on the old primary) writes follow the new one within an interval.
 */
export function redisSteps(role: 'master' | null): Step[] {
  const steps: Step[] = [{ send: Buffer.from('PING\r\n'), check: pong, what: '+PONG' }];
  if (role === 'master')
    steps.push({ send: Buffer.from('INFO replication\r\n'), check: master, what: 'role:master' });
  return steps;
}
