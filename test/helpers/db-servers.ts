import { spawn, spawnSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitForPort } from '../../bench/lib/net.js';
import { tempDir } from './config.js';
import { refusedPort, waitFor } from './servers.js';

/*
 * Throwaway MariaDB and PostgreSQL servers for the health tests: Debian's
 * binaries, a data directory under the temp dir, a free loopback port, gone
 * after the test. `null` when the package is not installed (the test says so).
 */

export interface DbServer {
  port: number;
  kill(): void;
  /** The server's Unix socket directory or path, for an admin client (psql -h, mariadb --socket). */
  socket: string;
  /** MariaDB's error log (its "Aborted connection" warnings); PostgreSQL: its stderr log file. */
  log: string;
}

const isRoot = process.getuid?.() === 0;

/** `args`: more server options (e.g. "--connect-timeout=2"). */
export async function mariadb(t: TestContext, args: string[] = []): Promise<DbServer | null> {
  if (!existsSync('/usr/sbin/mariadbd') || !existsSync('/usr/bin/mariadb-install-db')) return null;
  const dir = tempDir(t, 'blitz-mariadb-');
  const user = isRoot ? ['--user=root'] : [];
  const init = spawnSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${dir}/data`, ...user, '--skip-test-db'],
    { encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr}`);
  const port = await refusedPort();
  const p = spawn(
    '/usr/sbin/mariadbd',
    [
      '--no-defaults',
      `--datadir=${dir}/data`,
      ...user,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${dir}/sock`,
      `--pid-file=${dir}/pid`,
      `--log-error=${dir}/err.log`,
      '--skip-log-bin',
      '--innodb-buffer-pool-size=8M',
      ...args,
    ],
    { stdio: 'ignore' },
  );
  const kill = () => p.kill('SIGKILL');
  t.after(kill);
  await waitForPort(port, 30_000);
  return { port, kill, socket: `${dir}/sock`, log: `${dir}/err.log` };
}

/** Debian's newest PostgreSQL: /usr/lib/postgresql/<version>/bin. */
export function pgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const v = readdirSync(root)
    .filter((d) => existsSync(join(root, d, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(root, v, 'bin') : null;
}

/** initdb and postgres refuse to run as root: as root, they run as the package's postgres user. */
function asDbUser(cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/**
 * `hba`: pg_hba.conf lines placed before initdb's own (e.g. "host all md5user 127.0.0.1/32 md5");
 * `args`: more `-c name=value` settings.
 */
export async function postgres(
  t: TestContext,
  opts: { hba?: string[]; args?: string[] } = {},
): Promise<DbServer | null> {
  const bin = pgBin();
  if (!bin) return null;
  const dir = tempDir(t, 'blitz-pg-');
  if (isRoot) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (pw.status !== 0) return null;
    const uid = Number(pw.stdout.trim());
    chownSync(dir, uid, process.getgid?.() ?? 0);
  }
  const [initCmd, initArgs] = asDbUser(join(bin, 'initdb'), [
    '-D',
    `${dir}/data`,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  if (opts.hba) {
    const hba = `${dir}/data/pg_hba.conf`;
    writeFileSync(hba, `${opts.hba.join('\n')}\n${readFileSync(hba, 'utf8')}`);
  }
  const port = await refusedPort();
  const [cmd, args] = asDbUser(join(bin, 'postgres'), [
    '-D',
    `${dir}/data`,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    ...(opts.args ?? []).flatMap((a) => ['-c', a]),
  ]);
  const log = `${dir}/server.log`;
  const out = openSync(log, 'a');
  // detached: SIGKILL goes to the group, so runuser's child dies with it.
  const p = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  const kill = () => {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t.after(kill);
  await waitForPort(port, 30_000);
  // The port accepts while recovery still runs ("the database system is starting up").
  await waitFor(
    () => readFileSync(log, 'utf8').includes('ready to accept connections'),
    30_000,
    'PostgreSQL ready to accept connections',
  );
  return { port, kill, socket: dir, log };
}
