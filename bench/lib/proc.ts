import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat (getconf CLK_TCK; 100 on Linux everywhere we run). */
const CLK_TCK = 100;

/**
 * /proc/PID/stat from the field after the command name (which may itself hold
 * spaces: it ends at the last ')'): [0] state, [1] ppid, … [11] utime, [12] stime.
 */
export function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU time of a process, in milliseconds, from /proc/PID/stat. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

/** Resident set size now and at peak (VmRSS, VmHWM), in KiB. */
export function rssKb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string): number =>
    Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: get('VmRSS'), peak: get('VmHWM') };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Direct children of `pid` (the cluster workers), from /proc. */
export function children(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (Number(statFields(d)[1]) === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out.sort((a, b) => a - b);
}
