import {
  close,
  closeSync,
  constants,
  fstat,
  fstatSync,
  open,
  openSync,
  read,
  readSync,
  type Stats,
  stat,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
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

/** The file-system calls a guarded read makes: their arguments and result. */
interface Calls {
  stat: [args: [file: string], result: Stats];
  open: [args: [file: string], result: number];
  fstat: [args: [fd: number], result: Stats];
  /** Into buf from `at` to its end; the result is the count of bytes read. */
  read: [args: [fd: number, buf: Buffer, at: number], result: number];
  close: [args: [fd: number], result: unknown];
}

/** Each call done at once, and off the event loop. */
const CALLS: {
  readonly [K in keyof Calls]: readonly [
    sync: (...a: Calls[K][0]) => Calls[K][1],
    async: (...a: Calls[K][0]) => Promise<Calls[K][1]>,
  ];
} = {
  stat: [statSync, promisify(stat)],
  open: [(file) => openSync(file, OPEN_FLAGS), (file) => promisify(open)(file, OPEN_FLAGS)],
  fstat: [fstatSync, promisify(fstat)],
  read: [
    (fd, buf, at) => readSync(fd, buf, at, buf.length - at, null),
    async (fd, buf, at) => (await promisify(read)(fd, buf, at, buf.length - at, null)).bytesRead,
  ],
  close: [closeSync, promisify(close)],
};

/** One call as a guarded read asks for it; its driver makes it. */
interface FsCall {
  readonly name: keyof Calls;
  readonly args: readonly unknown[];
}
type Driven<T> = Generator<FsCall, T, unknown>;

/** Asks the driver for one call and hands back its result (or has its error thrown here). */
function* fs<K extends keyof Calls>(name: K, ...args: Calls[K][0]): Driven<Calls[K][1]> {
  return (yield { name, args }) as Calls[K][1];
}

/** The sync or the async side of a call, as one signature (each row above agrees with Calls). */
function side(c: FsCall, i: 0 | 1): (...a: readonly unknown[]) => unknown {
  return CALLS[c.name][i] as (...a: readonly unknown[]) => unknown;
}

/**
 * The rules above, written once: every file-system call is yielded, and
 * readGuarded makes it at once, readGuardedAsync off the event loop. (The
 * shape of gensync, Babel's one function for a sync and an async caller.)
 */
function* guardedRead(file: string, limit: number): Driven<Buffer> {
  let fd: number;
  try {
    checked(yield* fs('stat', file), limit);
    fd = yield* fs('open', file);
  } catch (err) {
    throw refusalOf(err);
  }
  try {
    checked(yield* fs('fstat', fd), limit);
    // One byte more than allowed: a file that grew after fstat is caught, and never read whole.
    const buf = Buffer.allocUnsafe(limit + 1);
    let n = 0;
    for (;;) {
      const got = yield* fs('read', fd, buf, n);
      if (got === 0) break;
      n += got;
      if (n > limit) throw tooBig(null, limit);
    }
    // A copy: the limit-sized buffer is not kept alive by a small file's contents.
    return Buffer.from(buf.subarray(0, n));
  } catch (err) {
    throw refusalOf(err);
  } finally {
    yield* fs('close', fd);
  }
}

/** Reads `file` under the rules above. Throws GuardedFileError. */
export function readGuarded(file: string, limit: number): Buffer {
  const steps = guardedRead(file, limit);
  let at = steps.next();
  while (!at.done) {
    let result: unknown;
    try {
      result = side(at.value, 0)(...at.value.args);
    } catch (err) {
      at = steps.throw(err);
      continue;
    }
    at = steps.next(result);
  }
  return at.value;
}

/** readGuarded off the event loop (a discovery file read while serving). */
export async function readGuardedAsync(file: string, limit: number): Promise<Buffer> {
  const steps = guardedRead(file, limit);
  const run = (at: IteratorResult<FsCall, Buffer>): Promise<Buffer> | Buffer =>
    at.done
      ? at.value
      : (side(at.value, 1)(...at.value.args) as Promise<unknown>).then(
          (result) => run(steps.next(result)),
          (err) => run(steps.throw(err)),
        );
  return run(steps.next());
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
