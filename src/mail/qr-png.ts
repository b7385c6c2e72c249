// The pay-link QR code as a small PNG. The symbol is the `qrcode` library's (its segmentation and
// its penalty-selected mask, ISO/IEC 18004); only the image is written here: a 1-bit palette PNG
// compressed by zlib. qrcode's own PNG (RGBA through pngjs) costs ~17–25 ms per mail, twenty times
// the rest of the pay-link render (bench P3); the matrix ~0.7 ms; this image ~0.1 ms.
import { crc32, deflateSync } from 'node:zlib';
import QRCode from 'qrcode';

export type QrErrorCorrection = 'L' | 'M' | 'Q' | 'H';

export interface QrPngOptions {
  /** Target width in pixels; the scale is the whole number of pixels per module that reaches it. */
  width?: number;
  /** Quiet zone, in modules. */
  margin?: number;
  errorCorrectionLevel?: QrErrorCorrection;
  /** #rrggbb */
  dark?: string;
  light?: string;
}

export interface QrMatrix {
  version: number;
  size: number;
  /** size × size, row-major, 1 = dark. */
  modules: Uint8Array;
}

/** qrcode's symbol for `text`. */
export function qrMatrix(text: string, errorCorrectionLevel: QrErrorCorrection = 'M'): QrMatrix {
  const qr = QRCode.create(text, { errorCorrectionLevel });
  return { version: qr.version, size: qr.modules.size, modules: qr.modules.data };
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const rgb = (hex: string): number[] => {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new RangeError(`expected #rrggbb, got ${hex}`);
  const n = parseInt(m[1]!, 16);
  return [n >> 16, (n >> 8) & 0xff, n & 0xff];
};

export function qrPng(text: string, opts: QrPngOptions = {}): Buffer {
  const margin = opts.margin ?? 1;
  const qr = qrMatrix(text, opts.errorCorrectionLevel ?? 'M');
  const cells = qr.size + 2 * margin;
  const scale = Math.max(1, Math.ceil((opts.width ?? 360) / cells));
  const px = cells * scale;
  // Rows of 1-bit pixels (palette index 1 = dark), each after its filter byte 0; a module row is
  // built once and repeated `scale` times.
  const stride = 1 + Math.ceil(px / 8);
  const raw = Buffer.alloc(stride * px);
  const row = Buffer.alloc(stride);
  for (let my = 0; my < cells; my++) {
    row.fill(0);
    const y = my - margin;
    if (y >= 0 && y < qr.size) {
      for (let x = 0; x < qr.size; x++) {
        if (!qr.modules[y * qr.size + x]) continue;
        for (let p = (x + margin) * scale, end = p + scale; p < end; p++) row[1 + (p >> 3)]! |= 0x80 >> (p & 7);
      }
    }
    for (let r = 0; r < scale; r++) row.copy(raw, (my * scale + r) * stride);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(px, 0);
  ihdr.writeUInt32BE(px, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 3; // colour type: palette
  const palette = Buffer.from([...rgb(opts.light ?? '#ffffff'), ...rgb(opts.dark ?? '#000000')]);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('PLTE', palette), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
