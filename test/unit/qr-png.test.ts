// The hand-written QR encoder gives, module for module, the symbol qrcode's own encoder gives for the
// same single byte-mode segment and the same (fixed) mask, at every level and mask; and the
// hand-written PNG decodes with pngjs with every pixel matching that matrix. (No QR decoder is
// installed: agreeing with qrcode, whose symbols decode, is the check.)
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import QRCode, { type QRCodeErrorCorrectionLevel, type QRCodeMaskPattern } from 'qrcode';
import { QR_DEFAULT_MASK, qrMatrix, qrPng } from '../../src/mail/qr-png.ts';

const reference = (text: string, ecl: QRCodeErrorCorrectionLevel, mask: number) =>
  QRCode.create([{ data: Buffer.from(text, 'utf8'), mode: 'byte' }], { errorCorrectionLevel: ecl, maskPattern: mask as QRCodeMaskPattern });

const PAY_LINK = 'http://localhost:3000/pay/AbCdEfGh12?e=1798718400&s=abcdefghijklmnopqrstuvwxyz012345';
const REAL_LINK = 'https://pay.bottega-rossi.example/pay/V1StGXR8_Z5jdHi6B-myT?a=12990&c=EUR&e=1798718400&k=k1&s=3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('qrMatrix', () => {
  const texts = [
    { name: 'one character (version 1)', text: 'x' },
    { name: 'the bench pay-link (version 5)', text: PAY_LINK },
    { name: 'a production-shaped pay-link (version info, ≥ 7)', text: REAL_LINK },
    { name: 'UTF-8 text over 16-bit counts (version ≥ 10)', text: `Caffè ☕ ${'é'.repeat(150)}` },
    { name: 'a long text (many blocks of two lengths)', text: 'A'.repeat(900) },
  ];
  for (const { name, text } of texts) {
    it(`matches qrcode for ${name} at every level and mask`, () => {
      for (const ecl of ['L', 'M', 'Q', 'H'] as const) {
        for (let mask = 0; mask < 8; mask++) {
          const ref = reference(text, ecl, mask);
          const mine = qrMatrix(text, ecl, mask);
          assert.equal(mine.version, ref.version, `${ecl}/${mask} version`);
          assert.equal(mine.size, ref.modules.size);
          assert.deepEqual([...mine.modules], [...ref.modules.data], `${ecl}/${mask} modules`);
        }
      }
    });
  }

  it('refuses a mask outside 0–7 and a text beyond version 40', () => {
    assert.throws(() => qrMatrix('x', 'M', 8), RangeError);
    assert.throws(() => qrMatrix('x'.repeat(3000), 'H'), RangeError);
  });
});

describe('qrPng', () => {
  const cases = [
    { name: 'a pay-link', text: PAY_LINK, width: 360, margin: 1 },
    { name: 'a short text, no margin', text: 'x', width: 50, margin: 0 },
    { name: 'one pixel per module (no repeated rows)', text: 'x', width: 1, margin: 0 },
    { name: 'a production-shaped pay-link, wide margin', text: REAL_LINK, width: 600, margin: 4 },
  ];
  for (const c of cases) {
    it(`encodes ${c.name} pixel for pixel`, () => {
      const png = PNG.sync.read(qrPng(c.text, { width: c.width, margin: c.margin, dark: '#111827', light: '#ffffff' }));
      const qr = reference(c.text, 'M', QR_DEFAULT_MASK);
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
});
