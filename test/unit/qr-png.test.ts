// The hand-written QR PNG decodes with pngjs, and every pixel matches the QR module matrix.
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { qrPng } from '../../src/mail/qr-png.ts';

describe('qrPng', () => {
  const cases = [
    { name: 'a pay-link', text: 'http://localhost:3000/pay/AbCdEfGh12?e=1798718400&s=abcdefghijklmnopqrstuvwxyz012345', width: 360, margin: 1 },
    { name: 'a short text, no margin', text: 'x', width: 50, margin: 0 },
  ];
  for (const c of cases) {
    it(`encodes ${c.name} pixel for pixel`, () => {
      const png = PNG.sync.read(qrPng(c.text, { width: c.width, margin: c.margin, dark: '#111827', light: '#ffffff' }));
      const qr = QRCode.create(c.text, { errorCorrectionLevel: 'M' });
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
