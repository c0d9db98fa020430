import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Writes `pid` to `file` whole (a temp file renamed over it): a reader never sees half a number. */
export function writePidFile(file: string, pid: number): void {
  const tmp = `${file}.${pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`);
  renameSync(tmp, file);
}

/** Removes `file` if it still names `pid`: after an upgrade it names the new process, which keeps it. */
export function removePidFile(file: string, pid: number): void {
  try {
    if (readFileSync(file, 'utf8').trim() === String(pid)) rmSync(file, { force: true });
  } catch {
    // Gone already, or unreadable: nothing of ours to remove.
  }
}
