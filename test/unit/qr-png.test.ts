// The pay-link QR image is the `qrcode` library's symbol (its segmentation and penalty-selected
// mask), drawn pixel for pixel into a 1-bit PNG that pngjs reads back and zbar decodes to the link.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { qrMatrix, qrPng } from '../../src/mail/qr-png.ts';

const reference = (text: string, ecl: 'L' | 'M' | 'Q' | 'H' = 'M') => QRCode.create(text, { errorCorrectionLevel: ecl });

const PAY_LINK = 'http://localhost:3000/pay/AbCdEfGh12?e=1798718400&s=abcdefghijklmnopqrstuvwxyz012345';
const REAL_LINK = 'https://pay.bottega-rossi.example/pay/V1StGXR8_Z5jdHi6B-myT?a=12990&c=EUR&e=1798718400&k=k1&s=3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('qrMatrix', () => {
  const texts = [
    { name: 'one character (version 1)', text: 'x' },
    { name: 'the bench pay-link', text: PAY_LINK },
    { name: 'a production-shaped pay-link (version info, ≥ 7)', text: REAL_LINK },
    { name: 'UTF-8 text over 16-bit counts (version ≥ 10)', text: `Caffè ☕ ${'é'.repeat(150)}` },
  ];
  for (const { name, text } of texts) {
    it(`is qrcode's symbol (penalty-selected mask) for ${name} at every level`, () => {
      for (const ecl of ['L', 'M', 'Q', 'H'] as const) {
        const ref = reference(text, ecl);
        const mine = qrMatrix(text, ecl);
        assert.equal(mine.version, ref.version, `${ecl} version`);
        assert.equal(mine.size, ref.modules.size);
        assert.deepEqual([...mine.modules], [...ref.modules.data], `${ecl} modules`);
      }
    });
  }

  it('refuses a text beyond version 40', () => {
    assert.throws(() => qrMatrix('x'.repeat(3000), 'H'));
  });
});

describe('qrPng', () => {
  const cases = [
    { name: 'a pay-link', text: PAY_LINK, width: 360, margin: 1 },
    { name: 'a short text, no margin', text: 'x', width: 50, margin: 0 },
    { name: 'one pixel per module', text: 'x', width: 1, margin: 0 },
    { name: 'a production-shaped pay-link, wide margin', text: REAL_LINK, width: 600, margin: 4 },
  ];
  for (const c of cases) {
    it(`draws ${c.name} pixel for pixel`, () => {
      const png = PNG.sync.read(qrPng(c.text, { width: c.width, margin: c.margin, dark: '#111827', light: '#ffffff' }));
      const qr = reference(c.text, 'M');
      const cells = qr.modules.size + 2 * c.margin;
      const scale = png.width / cells;
      assert.ok(Number.isInteger(scale) && png.width >= c.width && png.height === png.width);
      for (let y = 0; y < png.height; y++) {
        for (let x = 0; x < png.width; x++) {
          const mx = Math.floor(x / scale) - c.margin;
          const my = Math.floor(y / scale) - c.margin;
          const dark = mx >= 0 && my >= 0 && mx < qr.modules.size && my < qr.modules.size && Boolean(qr.modules.get(my, mx));
          const i = (y * png.width + x) * 4;
          assert.deepEqual([png.data[i], png.data[i + 1], png.data[i + 2]], dark ? [0x11, 0x18, 0x27] : [255, 255, 255], `pixel ${x},${y}`);
        }
      }
    });
  }

  it('decodes with zbar to the link', async function () {
    this.timeout(20_000);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-qr-'));
    try {
      for (const text of [PAY_LINK, REAL_LINK]) {
        const file = path.join(dir, 'qr.png');
        await writeFile(file, qrPng(text, { width: 360, margin: 1, dark: '#111827', light: '#ffffff' }));
        const { stdout } = await promisify(execFile)('zbarimg', ['--quiet', '--raw', '-Sdisable', '-Sqrcode.enable', file]);
        assert.equal(stdout.trim(), text);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
