import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchCharts, chartsMarkdown } from './charts.js';
import { markdown, type Results } from './report.js';

/**
 * bench/RESULTS.md and its charts, from one run's results: written by
 * `npm run bench` and, from bench/results/latest.json, by `npm run bench:charts`.
 */

/** A results file as the bench wrote it; JSON turned its NaNs (figures not measured) into null. */
export function readResults(file: string): Results {
  const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
  for (const rows of Object.values(r.scenarios))
    for (const s of Object.values(rows))
      for (const [k, v] of Object.entries(s))
        if (v === null) (s as unknown as Record<string, number>)[k] = Number.NaN;
  return r;
}

/** Writes the SVG charts and RESULTS.md (which shows them) into `benchDir`; returns the files written. */
export function writeResultsPage(benchDir: string, r: Results): string[] {
  const charts = benchCharts(r);
  const written: string[] = [];
  for (const c of charts) {
    writeFileSync(join(benchDir, c.file), c.svg);
    written.push(c.file);
  }
  writeFileSync(
    join(benchDir, 'RESULTS.md'),
    `# Benchmark results\n\n${markdown(r, chartsMarkdown(charts))}\n`,
  );
  written.push('RESULTS.md');
  return written;
}
