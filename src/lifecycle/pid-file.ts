import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { MAX_PID_FILE_BYTES, readGuarded } from '../config/guarded-file.js';

/** Writes `pid` to `file` whole (a temp file renamed over it): a reader never sees half a number. */
export function writePidFile(file: string, pid: number): void {
  const tmp = `${file}.${pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`);
  renameSync(tmp, file);
}

/** Removes `file` if it still names `pid`: after an upgrade it names the new process, which keeps it. */
export function removePidFile(file: string, pid: number): void {
  try {
    // Guarded: a FIFO put in its place would otherwise hold the exit forever.
    if (readGuarded(file, MAX_PID_FILE_BYTES).toString('latin1').trim() === String(pid))
      rmSync(file, { force: true });
  } catch {
    // Gone already, unreadable, or not a pid file: nothing of ours to remove.
  }
}
