import type { Results, Summary } from './report.js';

/**
 * Bar charts of a bench run as SVG, drawn here (no service, no dependency):
 * one chart per figure, every target side by side, each bar with its value,
 * a y axis with ticks and the unit. blitz-lb's bars are coloured, peers grey.
 */

export interface Bar {
  readonly label: string;
  readonly value: number;
}

export interface ChartSpec {
  readonly title: string;
  /** The y axis label, e.g. "µs of CPU per request". */
  readonly unit: string;
  readonly bars: readonly Bar[];
  /** Digits after the point in the value labels. */
  readonly digits: number;
}

export interface Chart {
  /** File name, next to RESULTS.md. */
  readonly file: string;
  readonly title: string;
  readonly svg: string;
}

const W_AXIS = 70;
const W_BAR = 64;
const W_GAP = 36;
const TOP = 56;
const PLOT_H = 220;
const BOTTOM = 56;
const OURS = '#d9480f';
const PEER = '#868e96';

function xml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

/** A round step so that about five ticks cover `max`: 1, 2 or 5 times a power of ten. */
export function tickStep(max: number): number {
  if (!(max > 0)) return 1;
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

const n = (x: number): string => String(Math.round(x * 10) / 10);

export function barChart(spec: ChartSpec): string {
  const bars = spec.bars.filter((b) => Number.isFinite(b.value));
  const max = Math.max(0, ...bars.map((b) => b.value));
  const step = tickStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const width = W_AXIS + bars.length * (W_BAR + W_GAP) + W_GAP;
  const height = TOP + PLOT_H + BOTTOM;
  const y = (v: number): number => TOP + PLOT_H - (v / top) * PLOT_H;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${xml(spec.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${xml(spec.title)}</text>`,
    `<text class="unit" x="14" y="${TOP + PLOT_H / 2}" transform="rotate(-90 14 ${TOP + PLOT_H / 2})" text-anchor="middle" fill="#495057">${xml(spec.unit)}</text>`,
  ];
  for (let v = 0; v <= top + step / 1e6; v += step) {
    const ty = n(y(v));
    out.push(
      `<line class="grid" x1="${W_AXIS}" y1="${ty}" x2="${width - 10}" y2="${ty}" stroke="#e9ecef"/>`,
      `<text class="tick" x="${W_AXIS - 6}" y="${ty}" dy="4" text-anchor="end" fill="#495057">${xml(trim(v))}</text>`,
    );
  }
  out.push(
    `<line class="axis" x1="${W_AXIS}" y1="${TOP}" x2="${W_AXIS}" y2="${TOP + PLOT_H}" stroke="#212529"/>`,
    `<line class="axis" x1="${W_AXIS}" y1="${TOP + PLOT_H}" x2="${width - 10}" y2="${TOP + PLOT_H}" stroke="#212529"/>`,
  );
  bars.forEach((b, i) => {
    const x = W_AXIS + W_GAP + i * (W_BAR + W_GAP);
    const by = y(b.value);
    const cx = x + W_BAR / 2;
    const fill = b.label.startsWith('blitz-lb') ? OURS : PEER;
    out.push(
      `<rect class="bar" data-label="${xml(b.label)}" data-value="${b.value}" x="${x}" y="${n(by)}" width="${W_BAR}" height="${n(TOP + PLOT_H - by)}" fill="${fill}"/>`,
      `<text class="value" x="${cx}" y="${n(by - 6)}" text-anchor="middle" font-weight="bold">${b.value.toFixed(spec.digits)}</text>`,
    );
    // "blitz-lb (pool off)" on two lines, so labels stay within their bar's width.
    const [first, ...rest] = b.label.split(' (');
    out.push(
      `<text class="label" x="${cx}" y="${TOP + PLOT_H + 18}" text-anchor="middle">${xml(first as string)}</text>`,
    );
    if (rest.length > 0)
      out.push(
        `<text class="label" x="${cx}" y="${TOP + PLOT_H + 33}" text-anchor="middle">${xml(`(${rest.join(' (')}`)}</text>`,
      );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function trim(v: number): string {
  return String(Number(v.toPrecision(6)));
}

function bars(rows: Record<string, Summary> | undefined, pick: (s: Summary) => number): Bar[] {
  return Object.entries(rows ?? {})
    .map(([label, s]) => ({ label, value: pick(s) }))
    .filter((b) => Number.isFinite(b.value));
}

/** The three charts of a run: CPU per request, CPU per connection, memory per session. */
export function benchCharts(r: Results): Chart[] {
  const specs: [string, ChartSpec][] = [
    [
      'chart-cpu-per-request.svg',
      {
        title: 'keep-alive: CPU per request (lower is better)',
        unit: 'µs of CPU per request',
        bars: bars(r.scenarios['keep-alive'], (s) => s.cpuUs),
        digits: 1,
      },
    ],
    [
      'chart-cpu-per-connection.svg',
      {
        title: 'churn: CPU per connection (lower is better)',
        unit: 'µs of CPU per connection',
        bars: bars(r.scenarios.churn, (s) => s.cpuUs),
        digits: 0,
      },
    ],
    [
      'chart-memory-per-session.svg',
      {
        title: 'idle: memory per open session (lower is better)',
        unit: 'KiB of RSS per session',
        bars: bars(r.scenarios.idle, (s) => s.kibPerSession),
        digits: 2,
      },
    ],
  ];
  return specs
    .filter(([, spec]) => spec.bars.length > 0)
    .map(([file, spec]) => ({ file, title: spec.title, svg: barChart(spec) }));
}

/** The markdown that shows the charts (RESULTS.md sits beside them). */
export function chartsMarkdown(charts: readonly Chart[]): string[] {
  if (charts.length === 0) return [];
  return [...charts.map((c) => `![${c.title}](${c.file})`), ''];
}
