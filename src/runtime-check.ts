import { runtimeProblem } from './runtime.js';

/**
 * Imported first by cli.ts, for its side effect: on a Node.js older than
 * MIN_NODE the command line exits 1 with one line saying which version it
 * needs and which it found, before any other module runs (the modules it
 * would load next may need what the old runtime lacks).
 */
const problem = runtimeProblem(process.version);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
