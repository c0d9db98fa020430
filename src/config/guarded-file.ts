import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoText } from '../errno.js';

/**
 * The one reader of every file the config names (certificates, keys, CAs,
 * discovery files, the pid file; the config file itself), at start, at
 * reload and in `check`. A FIFO would block the event loop (or a libuv
 * thread) until a writer came, /dev/zero would fill memory, a device may act
 * on being opened (a watchdog arms, a tape rewinds), and a huge file stalls a
 * reload. So:
 *
 * 1. stat the path first: anything but a regular file is refused before it
 *    is ever opened, and so is a file over the limit;
 * 2. open with O_NONBLOCK (and O_NOCTTY): if the path was swapped for a FIFO
 *    between the stat and the open, the open still returns at once;
 * 3. fstat the descriptor: the file actually opened must be a regular file
 *    within the limit (this closes the race of step 1 for what is read);
 * 4. read at most limit + 1 bytes: a file that grew after the fstat is
 *    refused, never read whole.
 *
 * What remains of the race is a device swapped in between 1 and 2 being
 * opened (never read); only someone who can already replace the files could.
 */

/** A certificate bundle or key is a few KiB; more is the wrong file. */
export const MAX_PEM_BYTES = 1024 * 1024;
/** A discovery file's backend list is a few KiB; past this it is a mistake, not a list. */
export const MAX_DISCOVERY_FILE_BYTES = 1024 * 1024;
/** A pid file holds one number. */
export const MAX_PID_FILE_BYTES = 64;

/** Why a file cannot be read, as a stable kind (branch on it) and in words (show them). */
export type RefusalKind = 'missing' | 'denied' | 'not-regular' | 'too-big' | 'other';

export class GuardedFileError extends Error {
  constructor(
    readonly kind: RefusalKind,
    /** "is a FIFO (named pipe), not a regular file", "no such file"…: follows the file's name. */
    readonly why: string,
  ) {
    super(why);
    this.name = 'GuardedFileError';
  }
}

/** What a file that is not regular is, in words. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function limitText(limit: number): string {
  return limit % (1024 * 1024) === 0
    ? `${limit / (1024 * 1024)} MiB (${limit} bytes)`
    : `${limit} bytes`;
}

function notRegular(st: Stats): GuardedFileError {
  const kind = fileKind(st);
  return new GuardedFileError(
    'not-regular',
    kind === 'a directory' ? 'is a directory' : `is ${kind}, not a regular file`,
  );
}

function tooBig(size: number | null, limit: number): GuardedFileError {
  const is = size === null ? 'grew past' : `is ${size} bytes, over`;
  return new GuardedFileError('too-big', `${is} the limit of ${limitText(limit)}`);
}

const REFUSAL_KINDS: Readonly<Record<string, RefusalKind>> = {
  ENOENT: 'missing',
  ENOTDIR: 'missing',
  EACCES: 'denied',
  EPERM: 'denied',
  EISDIR: 'not-regular',
  ENXIO: 'not-regular',
};

/** An fs error as a kind and in words (errno.ts's one list); the errno code decides, never the message. */
export function refusalOf(err: unknown): GuardedFileError {
  if (err instanceof GuardedFileError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const kind = (code !== undefined ? REFUSAL_KINDS[code] : undefined) ?? 'other';
  return new GuardedFileError(kind, errnoText(err, { otherwise: 'code' }));
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

function checked(st: Stats, limit: number): void {
  if (!st.isFile()) throw notRegular(st);
  if (st.size > limit) throw tooBig(st.size, limit);
}

/** Reads `file` under the rules above. Throws GuardedFileError. */
export function readGuarded(file: string, limit: number): Buffer {
  let fd: number;
  try {
    checked(statSync(file), limit);
    fd = openSync(file, OPEN_FLAGS);
  } catch (err) {
    throw refusalOf(err);
  }
  try {
    checked(fstatSync(fd), limit);
    // One byte more than allowed: a file that grew after fstat is caught, and never read whole.
    const buf = Buffer.allocUnsafe(limit + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > limit) throw tooBig(null, limit);
    }
    // A copy: the limit-sized buffer is not kept alive by a small file's contents.
    return Buffer.from(buf.subarray(0, n));
  } catch (err) {
    throw refusalOf(err);
  } finally {
    closeSync(fd);
  }
}

/** readGuarded off the event loop (a discovery file read while serving). */
export async function readGuardedAsync(file: string, limit: number): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    checked(await stat(file), limit);
    fh = await open(file, OPEN_FLAGS);
  } catch (err) {
    throw refusalOf(err);
  }
  try {
    checked(await fh.stat(), limit);
    const buf = Buffer.allocUnsafe(limit + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > limit) throw tooBig(null, limit);
    }
    return Buffer.from(buf.subarray(0, n));
  } catch (err) {
    throw refusalOf(err);
  } finally {
    await fh.close();
  }
}

/**
 * For a file the balancer writes or binds (the pid file, an admin Unix
 * socket): whatever is already there must be of the kind it will replace
 * (`want`), and its directory, when it exists, a directory. So `check` finds
 * a FIFO, a device or a directory at the path, not the first write. (A
 * directory that does not exist yet is `run`'s error: `check` may run on
 * another machine than the balancer.) Only stat is used: nothing is opened.
 */
export function checkPlace(file: string, want: 'file' | 'socket'): GuardedFileError | null {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory())
      return new GuardedFileError('not-regular', `its directory ${dir} is not a directory`);
  } catch (err) {
    const r = refusalOf(err);
    if (r.kind !== 'missing') return new GuardedFileError(r.kind, `its directory ${dir}: ${r.why}`);
    return null;
  }
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    const r = refusalOf(err);
    return r.kind === 'missing' ? null : r;
  }
  if (want === 'file' ? st.isFile() : st.isSocket()) return null;
  return new GuardedFileError(
    'not-regular',
    `is ${fileKind(st)}, not ${want === 'file' ? 'a regular file' : 'a socket'}`,
  );
}
