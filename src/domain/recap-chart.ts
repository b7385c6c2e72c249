// The recap's bar chart, drawn pixel by pixel into an RGBA buffer and encoded with pngjs: many
// mail clients show neither SVG nor canvas output, every client shows a PNG. No text is drawn
// (the mail states the numbers next to the image); the last bar — the recapped day — is darker.
import { PNG } from 'pngjs';

export const CHART_WIDTH = 560;
export const CHART_HEIGHT = 160;

type Rgb = readonly [number, number, number];
const BACKGROUND: Rgb = [255, 255, 255];
const GRID: Rgb = [229, 231, 235];
const AXIS: Rgb = [156, 163, 175];
const BAR: Rgb = [165, 180, 252];
const BAR_TODAY: Rgb = [79, 70, 229];
const EMPTY: Rgb = [209, 213, 219];

export interface ChartOptions {
  width?: number;
  height?: number;
}

/** One bar per value (e.g. the payments total of each of the last 7 days, oldest first). */
export function renderBarChart(values: readonly number[], opts: ChartOptions = {}): Buffer {
  const width = opts.width ?? CHART_WIDTH;
  const height = opts.height ?? CHART_HEIGHT;
  const png = new PNG({ width, height, colorType: 6 });
  const data = png.data;
  const fill = (x0: number, y0: number, x1: number, y1: number, [r, g, b]: Rgb) => {
    const xa = Math.max(0, Math.floor(x0));
    const xb = Math.min(width, Math.ceil(x1));
    const ya = Math.max(0, Math.floor(y0));
    const yb = Math.min(height, Math.ceil(y1));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const i = (y * width + x) * 4;
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
        data[i + 3] = 255;
      }
    }
  };
  fill(0, 0, width, height, BACKGROUND);
  const pad = 8;
  const base = height - pad;
  const top = pad;
  // Four grid lines: a reader sees proportions without labels.
  for (let k = 1; k <= 4; k++) fill(pad, base - ((base - top) * k) / 4, width - pad, base - ((base - top) * k) / 4 + 1, GRID);
  const max = Math.max(0, ...values);
  const n = Math.max(1, values.length);
  const slot = (width - 2 * pad) / n;
  const barWidth = Math.max(1, slot * 0.64);
  values.forEach((v, i) => {
    const x0 = pad + i * slot + (slot - barWidth) / 2;
    const last = i === values.length - 1;
    if (v <= 0 || max === 0) {
      // A day without payments still shows where its bar would be.
      fill(x0, base - 2, x0 + barWidth, base, EMPTY);
      return;
    }
    const h = Math.max(2, Math.round(((base - top) * v) / max));
    fill(x0, base - h, x0 + barWidth, base, last ? BAR_TODAY : BAR);
  });
  fill(pad, base, width - pad, base + 1, AXIS);
  return PNG.sync.write(png);
}
