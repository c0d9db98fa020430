import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { DiscoveryConfig } from '../config/discovery.js';
import { MAX_DISCOVERY_FILE_BYTES, readGuardedAsync, refusalOf } from '../config/guarded-file.js';
import { parseToml } from '../config/load.js';
import { parseEntries } from './entries.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/**
 * kind = "file": a JSON or TOML file listing backends as `backends` does,
 * read again when it changes. The directory is watched, not the file: an
 * editor or a deploy tool that writes a new file and renames it over the old
 * one replaces the inode a file watch would follow. Each event (and each
 * `interval`, in case a filesystem sends none) re-stats the file, and only a
 * new inode, size or mtime is read.
 */
export function fileSource(cfg: DiscoveryConfig): Source {
  const file = cfg.path;
  let lastGood = '';
  return {
    target: file,
    deadlineMs: () => cfg.timeoutMs,
    async lookup(): Promise<Answer> {
      let text: string;
      let seen: string;
      try {
        const st = await stat(file);
        if (!st.isFile()) throw new DiscoveryError(`${file}: not a regular file`);
        seen = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
        if (seen === lastGood) return { backends: null, ttlMs: null };
        // The guarded reader: a path swapped for a FIFO or a device since the stat is refused, never waited on.
        text = (await readGuardedAsync(file, MAX_DISCOVERY_FILE_BYTES)).toString('utf8');
      } catch (err) {
        if (err instanceof DiscoveryError) throw err;
        throw new DiscoveryError(`${file}: ${refusalOf(err).why}`);
      }
      let doc: unknown;
      if (/\.toml$/i.test(file)) {
        doc = parseToml(text, file);
      } else {
        try {
          doc = JSON.parse(text);
        } catch (err) {
          throw new DiscoveryError(`${file}: bad JSON: ${(err as Error).message}`);
        }
      }
      const backends = parseEntries(doc, cfg.backend, file);
      lastGood = seen;
      return { backends, ttlMs: null };
    },
    watch(changed): () => void {
      const name = basename(file);
      let w: FSWatcher | null = null;
      try {
        w = watch(dirname(file), { persistent: false }, (_event, f) => {
          if (f === null || f === name) changed();
        });
        // The directory went away, or the watch broke: `interval` still re-stats.
        w.on('error', () => w?.close());
      } catch {
        // No watch possible here (no inotify left): `interval` re-stats.
      }
      return () => w?.close();
    },
  };
}
