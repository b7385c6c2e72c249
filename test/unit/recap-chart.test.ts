// The recap chart is a real PNG: it decodes with pngjs, has the promised size, and its bars are
// proportional to the values (the last bar, the recapped day, in the darker colour).
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { CHART_HEIGHT, CHART_WIDTH, renderBarChart } from '../../src/domain/recap-chart.ts';

/** Height in pixels of the coloured run in column x, counted up from the axis. */
function barHeight(png: PNG, x: number): { height: number; rgb: [number, number, number] } {
  let height = 0;
  let rgb: [number, number, number] = [255, 255, 255];
  for (let y = png.height - 9; y >= 0; y--) {
    const i = (y * png.width + x) * 4;
    const px: [number, number, number] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
    // Grid lines are light grey; bars are blue.
    if (px[2] > px[0] + 30) {
      height++;
      rgb = px;
    } else if (height > 0) break;
  }
  return { height, rgb };
}

describe('recap chart', () => {
  const cases: Array<[string, number[]]> = [
    ['seven days', [1000, 0, 2500, 5000, 0, 1200, 10000]],
    ['all zero', [0, 0, 0, 0, 0, 0, 0]],
    ['one day', [4200]],
  ];
  for (const [name, values] of cases) {
    it(`renders ${name} as a ${CHART_WIDTH}×${CHART_HEIGHT} PNG`, () => {
      const buf = renderBarChart(values);
      assert.deepEqual([...buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      const png = PNG.sync.read(buf);
      assert.equal(png.width, CHART_WIDTH);
      assert.equal(png.height, CHART_HEIGHT);
      assert.ok(buf.length < 20_000, `small enough for a mail (${buf.length} bytes)`);
    });
  }

  it('draws bars proportional to the values, the last one darker', () => {
    const values = [1000, 0, 2500, 5000, 0, 1200, 10000];
    const png = PNG.sync.read(renderBarChart(values));
    const slot = (CHART_WIDTH - 16) / values.length;
    const bars = values.map((_, i) => barHeight(png, Math.round(8 + i * slot + slot / 2)));
    const full = bars[6]!.height;
    assert.ok(full > 100, `tallest bar ${full}px`);
    assert.equal(bars[1]!.height, 0);
    assert.ok(Math.abs(bars[3]!.height - full / 2) <= 1, `half: ${bars[3]!.height} of ${full}`);
    assert.ok(Math.abs(bars[0]!.height - full / 10) <= 1);
    assert.ok(bars[6]!.rgb[0] < bars[3]!.rgb[0], 'the recapped day is darker');
  });

  it('honours a custom size', () => {
    const png = PNG.sync.read(renderBarChart([1, 2], { width: 100, height: 40 }));
    assert.deepEqual([png.width, png.height], [100, 40]);
  });
});
