// The pay-link QR code as a 1-bit palette PNG, written directly: qrcode's own PNG output goes
// through an RGBA bitmap (4 bytes a pixel) and pngjs, which made it ~95% of the CPU of a pay-link
// mail render (bench P3). Modules are scaled by a whole number of pixels, so edges stay sharp.
import { crc32, deflateSync } from 'node:zlib';
import QRCode from 'qrcode';

export interface QrPngOptions {
  /** Target width in pixels; the scale is the whole number of pixels per module that reaches it. */
  width?: number;
  /** Quiet zone, in modules. */
  margin?: number;
  errorCorrectionLevel?: 'L' | 'M' | 'Q' | 'H';
  /** #rrggbb */
  dark?: string;
  light?: string;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

const rgb = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

export function qrPng(text: string, opts: QrPngOptions = {}): Buffer {
  const margin = opts.margin ?? 1;
  const qr = QRCode.create(text, { errorCorrectionLevel: opts.errorCorrectionLevel ?? 'M' });
  const n = qr.modules.size;
  const cells = n + 2 * margin;
  const scale = Math.max(1, Math.ceil((opts.width ?? 360) / cells));
  const px = cells * scale;
  const rowBytes = Math.ceil(px / 8);
  // One scanline per module row, repeated `scale` times; palette index 1 = dark.
  const raw = Buffer.alloc((rowBytes + 1) * px);
  const line = Buffer.alloc(rowBytes);
  for (let my = 0; my < cells; my++) {
    line.fill(0);
    const y = my - margin;
    if (y >= 0 && y < n) {
      for (let x = 0; x < n; x++) {
        if (!qr.modules.get(y, x)) continue;
        const start = (x + margin) * scale;
        for (let p = start; p < start + scale; p++) line[p >> 3]! |= 0x80 >> (p & 7);
      }
    }
    for (let r = 0; r < scale; r++) {
      const at = (my * scale + r) * (rowBytes + 1);
      raw[at] = 0; // filter: none
      line.copy(raw, at + 1);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(px, 0);
  ihdr.writeUInt32BE(px, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 3; // colour type: palette
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Buffer.from([...rgb(opts.light ?? '#ffffff'), ...rgb(opts.dark ?? '#000000')])),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
