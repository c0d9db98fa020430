/**
 * The oldest Node.js blitz-lb runs on: 22.12 is the first 22.x with
 * `reusePort` for net listeners (workers bind their own sockets) and the
 * first LTS line still supported (Node 20 reached end-of-life on 2026-04-30).
 * package.json's `engines` says the same.
 */
export const MIN_NODE = [22, 12, 0] as const;

/** Why `version` ("v20.20.2") cannot run blitz-lb, as one line; null: it can. */
export function runtimeProblem(version: string): string | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  const have = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    const a = have[i] as number;
    const b = MIN_NODE[i] as number;
    if (a > b) return null;
    if (a < b) break;
    if (i === 2) return null;
  }
  return `blitz-lb needs Node.js ${MIN_NODE.join('.')} or later; this is Node.js ${version.replace(/^v/, '')} (${process.execPath})`;
}
