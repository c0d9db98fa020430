/**
 * V8's garbage collector on a small machine. By default V8 runs parts of
 * every collection on helper threads (parallel scavenge, concurrent marking
 * and sweeping); on one or two cores those threads take the core the
 * balancer's own thread or its peer worker needs. `--single-threaded-gc`
 * keeps the collector on the main thread: measured on 2 cores (bench/ab.ts,
 * docs/performance.md "What was tried on Node 24"), bulk CPU per GiB 0.86x,
 * keep-alive and churn CPU per request 0.91x and 0.94x, idle memory per
 * session unchanged. It must be on node's command line: set from inside a
 * running process (v8.setFlagsFromString) it measured 0.98x, nothing. So
 * the primary passes it to the workers it starts; a single process gets it
 * from whoever starts node (docs/operations.md).
 *
 * On by default when the machine gives this process at most two cores;
 * BLITZ_LB_SINGLE_THREADED_GC=0 turns it off, =1 on whatever the cores.
 */
import { availableParallelism } from 'node:os';

export const SINGLE_THREADED_GC = '--single-threaded-gc';

/** Whether the balancer's processes should run V8's collector on their main thread only. */
export function singleThreadedGcWanted(
  env: NodeJS.ProcessEnv = process.env,
  cores: number = availableParallelism(),
): boolean {
  const v = env.BLITZ_LB_SINGLE_THREADED_GC;
  if (v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  return cores <= 2;
}

/**
 * The node flags a process this one starts (a cluster worker) runs with:
 * this process's own, plus `--single-threaded-gc` when wanted and not
 * already decided on the command line (either way).
 */
export function childExecArgv(
  execArgv: readonly string[] = process.execArgv,
  wanted: boolean = singleThreadedGcWanted(),
): string[] {
  const decided = execArgv.some((a) => a === SINGLE_THREADED_GC || a === '--no-single-threaded-gc');
  return wanted && !decided ? [...execArgv, SINGLE_THREADED_GC] : [...execArgv];
}
