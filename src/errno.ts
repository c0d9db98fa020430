/**
 * Errno codes in words an operator reads, and the codes that say the
 * balancer itself is short of something. A leaf: config/, the listeners,
 * discovery and the TLS loader all read it, and it imports nothing.
 */

const WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file (a part of the path is not a directory)',
  EPERM: 'permission denied',
  ELOOP: 'too many symbolic links',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENXIO: 'is not a regular file (a socket?)',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
  EBADF: 'no such open descriptor',
  ENOTSOCK: 'the descriptor is not a socket',
};

export interface ErrnoTextOptions {
  /** Read before the common words, where a code means something narrower (ENOTFOUND from a DNS query). */
  readonly words?: Readonly<Record<string, string>>;
  /** A code with no words: its code (DNS codes are what operators search for), or the error's message (the default). */
  readonly otherwise?: 'code' | 'message';
}

/** `err`'s errno code in words an operator reads. */
export function errnoText(err: unknown, opts: ErrnoTextOptions = {}): string {
  const e = err as Partial<NodeJS.ErrnoException> | null | undefined;
  const code = e?.code;
  if (code !== undefined) {
    const words = opts.words?.[code] ?? WORDS[code];
    if (words !== undefined) return words;
    if (opts.otherwise === 'code') return code;
  }
  return e?.message ?? String(err);
}

/**
 * Errors that say the balancer itself is short of something (descriptors,
 * buffers, ephemeral ports), not that a backend failed: out of descriptors,
 * every dial fails whatever the backend, and counting that against backends
 * would take healthy ones down (and with all_down = "refuse", turn a local
 * problem into an outage).
 */
export const LOCAL_ERRNO: ReadonlySet<string> = new Set([
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
  'EADDRNOTAVAIL',
]);
