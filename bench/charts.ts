/**
 * npm run bench:charts [-- FILE]
 *
 * Redraws bench/RESULTS.md and its SVG charts from a results file (default
 * bench/results/latest.json) without running the bench again.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readResults, writeResultsPage } from './lib/results-page.js';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
const file = process.argv[2] ?? join(benchDir, 'results', 'latest.json');
const written = writeResultsPage(benchDir, readResults(file));
process.stdout.write(`from ${file}: ${written.map((f) => join('bench', f)).join(', ')}\n`);
