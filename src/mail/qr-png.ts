// The pay-link QR code as a 1-bit palette PNG, encoded and written here without qrcode and zlib.
// Every pay-link mail carries its own QR image, so this runs once per mail (bench P3). Measured on
// a version-5 link: qrcode's RGBA PNG through pngjs ~17 ms; QRCode.create ~0.65 ms, of which ~0.5 ms
// is scoring all 8 mask patterns and ~0.1 ms its optimal segmentation (Dijkstra); zlib's deflate
// of the 390×390 bitmap 50–270 µs. This file: ~0.05 ms. What is done instead:
// - one byte-mode segment (the whole UTF-8 text): no segmentation search; the same version as
//   qrcode's byte/numeric mix for our links at level M (at most one larger in general);
// - a FIXED mask pattern (ISO/IEC 18004 allows any of the 8; the penalty score only steers away
//   from patterns some readers find harder, every mask decodes);
// - per version, the function patterns and the zigzag order of the data modules are computed once
//   and cached, so a QR code is a Reed–Solomon pass plus one write per data module;
// - the PNG's zlib stream is written by hand: each module row is a stored deflate block and its
//   `scale − 1` repeats are back-references in a small fixed-Huffman block; the Adler-32 of the
//   repeats is computed arithmetically. The file is larger than zlib would make it (~2.4 KB
//   against ~0.6 KB for a version-5 code at 390 px) and costs a few µs instead of ≥ 50 µs.
// test/unit/qr-png.test.ts checks the matrix module for module against qrcode's own encoder (same
// segment, same mask, every level and mask) and the PNG pixel for pixel after decoding it with pngjs.
import { crc32 } from 'node:zlib';

export type QrErrorCorrection = 'L' | 'M' | 'Q' | 'H';

export interface QrPngOptions {
  /** Target width in pixels; the scale is the whole number of pixels per module that reaches it. */
  width?: number;
  /** Quiet zone, in modules. */
  margin?: number;
  errorCorrectionLevel?: QrErrorCorrection;
  /** Mask pattern 0–7; fixed rather than chosen by penalty score (see the header). */
  maskPattern?: number;
  /** #rrggbb */
  dark?: string;
  light?: string;
}

/** The mask used unless one is asked for. Any of the 8 decodes; 0 is the checkerboard. */
export const QR_DEFAULT_MASK = 0;

export interface QrMatrix {
  version: number;
  size: number;
  /** size × size, row-major, 1 = dark. */
  modules: Uint8Array;
}

// ---- ISO/IEC 18004 tables (versions 1–40, columns L M Q H), as in qrcode's error-correction-code.js ----

// prettier-ignore
const EC_BLOCKS = [1,1,1,1,1,1,1,1,1,1,2,2,1,2,2,4,1,2,4,4,2,4,4,4,2,4,6,5,2,4,6,6,2,5,8,8,4,5,8,8,4,5,8,11,4,8,10,11,4,9,12,16,4,9,16,16,6,10,12,18,6,10,17,16,6,11,16,19,6,13,18,21,7,14,21,25,8,16,20,25,8,17,23,25,9,17,23,34,9,18,25,30,10,20,27,32,12,21,29,35,12,23,34,37,12,25,34,40,13,26,35,42,14,28,38,45,15,29,40,48,16,31,43,51,17,33,45,54,18,35,48,57,19,37,51,60,19,38,53,63,20,40,56,66,21,43,59,70,22,45,62,74,24,47,65,77,25,49,68,81];
// prettier-ignore
const EC_CODEWORDS = [7,10,13,17,10,16,22,28,15,26,36,44,20,36,52,64,26,48,72,88,36,64,96,112,40,72,108,130,48,88,132,156,60,110,160,192,72,130,192,224,80,150,224,264,96,176,260,308,104,198,288,352,120,216,320,384,132,240,360,432,144,280,408,480,168,308,448,532,180,338,504,588,196,364,546,650,224,416,600,700,224,442,644,750,252,476,690,816,270,504,750,900,300,560,810,960,312,588,870,1050,336,644,952,1110,360,700,1020,1200,390,728,1050,1260,420,784,1140,1350,450,812,1200,1440,480,868,1290,1530,510,924,1350,1620,540,980,1440,1710,570,1036,1530,1800,570,1064,1590,1890,600,1120,1680,1980,630,1204,1770,2100,660,1260,1860,2220,720,1316,1950,2310,750,1372,2040,2430];
const ECL_INDEX: Record<QrErrorCorrection, number> = { L: 0, M: 1, Q: 2, H: 3 };
/** The two format-information bits of each level. */
const ECL_FORMAT: Record<QrErrorCorrection, number> = { L: 1, M: 0, Q: 3, H: 2 };

/** Modules available for data and error correction (everything but the function patterns). */
function rawDataModules(v: number): number {
  let n = (16 * v + 128) * v + 64;
  if (v >= 2) {
    const align = Math.floor(v / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (v >= 7) n -= 36;
  }
  return n;
}

function alignmentPositions(v: number): number[] {
  if (v === 1) return [];
  const count = Math.floor(v / 7) + 2;
  const step = v === 32 ? 26 : Math.ceil((v * 4 + 4) / (count * 2 - 2)) * 2;
  const out = [6];
  for (let pos = v * 4 + 10; out.length < count; pos -= step) out.splice(1, 0, pos);
  return out;
}

// ---- GF(256), polynomial 0x11d, and Reed–Solomon ----

// EXP is 0 from 512 on: a zero coefficient's "logarithm" is ZERO_LOG, so a product with it reads 0.
const EXP = new Uint8Array(1024);
const ZERO_LOG = 512;
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x;
  LOG[x] = i;
  x = (x << 1) ^ (x & 0x80 ? 0x11d : 0);
}
for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
const gfMul = (a: number, b: number) => (a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!);

/** Generator polynomial of the given degree, leading 1 omitted, highest power first, as logarithms. */
const DIVISORS = new Map<number, Uint16Array>();
function divisor(degree: number): Uint16Array {
  let logs = DIVISORS.get(degree);
  if (!logs) {
    const d = new Uint8Array(degree);
    d[degree - 1] = 1;
    let root = 1;
    for (let i = 0; i < degree; i++) {
      for (let j = 0; j < degree; j++) {
        d[j] = gfMul(d[j]!, root);
        if (j + 1 < degree) d[j]! ^= d[j + 1]!;
      }
      root = gfMul(root, 2);
    }
    logs = Uint16Array.from(d, (c) => (c === 0 ? ZERO_LOG : LOG[c]!));
    DIVISORS.set(degree, logs);
  }
  return logs;
}

/** Remainder of data·x^n ÷ the generator (an LFSR: shift and add in one pass). */
function reedSolomon(data: Uint8Array, divLog: Uint16Array, out: Uint8Array): void {
  const n = divLog.length;
  out.fill(0, 0, n);
  for (let k = 0; k < data.length; k++) {
    const factor = data[k]! ^ out[0]!;
    // factor 0: every product is 0 (ZERO_LOG + anything lands in EXP's zero half).
    const lf = factor === 0 ? ZERO_LOG : LOG[factor]!;
    for (let i = 0; i < n - 1; i++) out[i] = out[i + 1]! ^ EXP[divLog[i]! + lf]!;
    out[n - 1] = EXP[divLog[n - 1]! + lf]!;
  }
}

// ---- per-version layout (cached): function patterns and the order data modules are filled in ----

interface Layout {
  size: number;
  /** Function patterns drawn (format areas left light). */
  base: Uint8Array;
  isFunction: Uint8Array;
  /** Indices of the data modules in placement order (ISO 18004 §7.7.3, the two-column zigzag). */
  order: Uint32Array;
}

const LAYOUTS = new Map<number, Layout>();

function layout(v: number): Layout {
  const cached = LAYOUTS.get(v);
  if (cached) return cached;
  const size = v * 4 + 17;
  const base = new Uint8Array(size * size);
  const isFunction = new Uint8Array(size * size);
  const fn = (x: number, y: number, dark: boolean) => {
    base[y * size + x] = dark ? 1 : 0;
    isFunction[y * size + x] = 1;
  };
  for (let i = 0; i < size; i++) {
    fn(6, i, i % 2 === 0);
    fn(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]] as const) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        const dist = Math.max(Math.abs(dx), Math.abs(dy));
        if (x >= 0 && x < size && y >= 0 && y < size) fn(x, y, dist !== 2 && dist !== 4);
      }
    }
  }
  const align = alignmentPositions(v);
  for (let i = 0; i < align.length; i++) {
    for (let j = 0; j < align.length; j++) {
      // Not over the three finder patterns.
      if ((i === 0 && j === 0) || (i === 0 && j === align.length - 1) || (i === align.length - 1 && j === 0)) continue;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) fn(align[i]! + dx, align[j]! + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
      }
    }
  }
  // Format areas reserved (drawn per level and mask in encode), and the dark module.
  for (let i = 0; i < 9; i++) {
    if (i !== 6) {
      fn(8, i, false);
      fn(i, 8, false);
    }
  }
  for (let i = 0; i < 8; i++) {
    fn(size - 1 - i, 8, false);
    fn(8, size - 1 - i, false);
  }
  fn(8, size - 8, true);
  if (v >= 7) {
    let rem = v;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (v << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      fn(a, b, dark);
      fn(b, a, dark);
    }
  }
  const order = new Uint32Array(rawDataModules(v));
  let k = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5; // skip the vertical timing pattern
    const upward = ((right + 1) & 2) === 0;
    for (let vert = 0; vert < size; vert++) {
      const y = upward ? size - 1 - vert : vert;
      for (let j = 0; j < 2; j++) {
        const at = y * size + right - j;
        if (!isFunction[at]) order[k++] = at;
      }
    }
  }
  if (k !== order.length) throw new Error(`QR layout: ${k} data modules, expected ${order.length}`);
  const l = { size, base, isFunction, order };
  LAYOUTS.set(v, l);
  return l;
}

function maskBit(mask: number, x: number, y: number): boolean {
  switch (mask) {
    case 0: return (x + y) % 2 === 0;
    case 1: return y % 2 === 0;
    case 2: return x % 3 === 0;
    case 3: return (x + y) % 3 === 0;
    case 4: return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0;
    case 5: return ((x * y) % 2) + ((x * y) % 3) === 0;
    case 6: return (((x * y) % 2) + ((x * y) % 3)) % 2 === 0;
    case 7: return (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
    default: throw new RangeError(`QR mask pattern must be 0–7, got ${mask}`);
  }
}

/** Per version, level and mask: the symbol with format bits drawn, and the mask over `order`. */
interface Masked {
  base: Uint8Array;
  mask: Uint8Array;
}
const MASKED = new Map<string, Masked>();

function masked(v: number, ecl: QrErrorCorrection, mask: number): Masked {
  const key = `${v}${ecl}${mask}`;
  let m = MASKED.get(key);
  if (m) return m;
  const { size, base: fnBase, order } = layout(v);
  const base = fnBase.slice();
  const data = (ECL_FORMAT[ecl] << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const set = (x: number, y: number, i: number) => (base[y * size + x] = (bits >>> i) & 1);
  for (let i = 0; i <= 5; i++) set(8, i, i);
  set(8, 7, 6);
  set(8, 8, 7);
  set(7, 8, 8);
  for (let i = 9; i < 15; i++) set(14 - i, 8, i);
  for (let i = 0; i < 8; i++) set(size - 1 - i, 8, i);
  for (let i = 8; i < 15; i++) set(8, size - 15 + i, i);
  const maskBits = new Uint8Array(order.length);
  for (let i = 0; i < order.length; i++) maskBits[i] = maskBit(mask, order[i]! % size, Math.floor(order[i]! / size)) ? 1 : 0;
  m = { base, mask: maskBits };
  MASKED.set(key, m);
  return m;
}

const utf8 = new TextEncoder();
// Scratch space reused by every call (encoding is synchronous); grown for larger versions.
let DATA = new Uint8Array(256);
let CODEWORDS = new Uint8Array(512);
const ECC = new Uint8Array(32);

/** The QR symbol of `text` as one byte-mode segment, smallest version, the given level and mask. */
export function qrMatrix(text: string, ecl: QrErrorCorrection = 'M', mask = QR_DEFAULT_MASK): QrMatrix {
  if (!Number.isInteger(mask) || mask < 0 || mask > 7) throw new RangeError(`QR mask pattern must be 0–7, got ${mask}`);
  const bytes = utf8.encode(text);
  const e = ECL_INDEX[ecl];
  let v = 1;
  let dataCodewords = 0;
  for (; v <= 40; v++) {
    dataCodewords = (rawDataModules(v) >>> 3) - EC_CODEWORDS[(v - 1) * 4 + e]!;
    if (4 + (v < 10 ? 8 : 16) + bytes.length * 8 <= dataCodewords * 8) break;
  }
  if (v > 40) throw new RangeError('text too long for a QR code');

  // Bit stream: mode 0100, character count, the bytes, terminator 0000, pad bytes 0xEC 0x11. All
  // of it is nibble-aligned, so it is written a byte at a time with the low nibble carried over.
  if (DATA.length < dataCodewords) DATA = new Uint8Array(dataCodewords);
  const data = DATA;
  let n = 0;
  if (v < 10) data[n++] = 0x40 | (bytes.length >>> 4);
  else {
    data[n++] = 0x40 | (bytes.length >>> 12);
    data[n++] = (bytes.length >>> 4) & 0xff;
  }
  let carry = bytes.length & 15;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    data[n++] = (carry << 4) | (c >>> 4);
    carry = c & 15;
  }
  data[n++] = carry << 4; // the last nibble, then the 4-bit terminator (room is guaranteed above)
  for (let pad = 0xec; n < dataCodewords; pad ^= 0xec ^ 0x11) data[n++] = pad;

  // Blocks, error correction, interleaving.
  const blocks = EC_BLOCKS[(v - 1) * 4 + e]!;
  const eccLen = EC_CODEWORDS[(v - 1) * 4 + e]! / blocks;
  const raw = rawDataModules(v) >>> 3;
  const shortBlocks = blocks - (raw % blocks);
  const shortLen = Math.floor(raw / blocks) - eccLen; // data codewords in a short block
  if (CODEWORDS.length < raw) CODEWORDS = new Uint8Array(raw);
  const codewords = CODEWORDS;
  const div = divisor(eccLen);
  const ecc = ECC;
  for (let b = 0, start = 0; b < blocks; b++) {
    const len = shortLen + (b < shortBlocks ? 0 : 1);
    const block = data.subarray(start, start + len);
    start += len;
    reedSolomon(block, div, ecc);
    for (let i = 0; i < len; i++) {
      // Data codeword i of every block in turn; long blocks' last codeword after all short ones.
      codewords[i < shortLen ? i * blocks + b : shortLen * blocks + (b - shortBlocks)] = block[i]!;
    }
    for (let i = 0; i < eccLen; i++) codewords[dataCodewords + i * blocks + b] = ecc[i]!;
  }

  const { size, order } = layout(v);
  const m = masked(v, ecl, mask);
  const modules = m.base.slice();
  const bits = raw * 8;
  for (let i = 0; i < bits; i++) modules[order[i]!] = ((codewords[i >>> 3]! >>> (7 - (i & 7))) & 1) ^ m.mask[i]!;
  // Remainder modules (0–7 of them) carry a light bit, masked.
  for (let i = bits; i < order.length; i++) modules[order[i]!] = m.mask[i]!;
  return { version: v, size, modules };
}

// ---- PNG: 1-bit palette; the zlib stream written here ----
//
// Each module row is one scanline (filter byte 0, then the pixels, palette index 1 = dark) that
// appears `scale` times. Deflate (RFC 1951) lets blocks of different kinds follow each other and
// lets a back-reference reach into earlier blocks, so each module row goes out as a STORED block
// (its bytes copied as they are: no Huffman coding per byte) followed by a small fixed-Huffman
// block holding one or two back-references at distance = scanline length, which repeat it.

/** Fixed Huffman codes (RFC 1951 §3.2.6), bit-reversed for the LSB-first stream. */
const reverse = (code: number, len: number) => {
  let r = 0;
  for (let i = 0; i < len; i++) r |= ((code >>> i) & 1) << (len - 1 - i);
  return r;
};
const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const lastLE = (table: number[], value: number) => {
  let i = table.length - 1;
  while (table[i]! > value) i--;
  return i;
};

/** LSB-first bit writer over a byte array (RFC 1951 §3.1.1). */
class BitWriter {
  n = 0;
  private acc = 0;
  private bits = 0;
  constructor(readonly out: Uint8Array) {}
  /** `len` ≤ 24 bits of `value`, least significant first. */
  put(value: number, len: number): void {
    this.acc |= value << this.bits;
    this.bits += len;
    while (this.bits >= 8) {
      this.out[this.n++] = this.acc & 0xff;
      this.acc >>>= 8;
      this.bits -= 8;
    }
  }
  /** Pads to a byte boundary with zero bits. */
  align(): void {
    if (this.bits > 0) this.out[this.n++] = this.acc & 0xff;
    this.acc = 0;
    this.bits = 0;
  }
}

/** The back-references that repeat a scanline `scale - 1` times, as fixed-Huffman bits. */
interface RepeatCode {
  /** Values and bit lengths to put, in order (block header and end-of-block included). */
  values: number[];
  lengths: number[];
}

function repeatCode(rowLen: number, scale: number): RepeatCode {
  const values: number[] = [];
  const lengths: number[] = [];
  const put = (v: number, l: number) => {
    values.push(v);
    lengths.push(l);
  };
  const dist = lastLE(DIST_BASE, rowLen);
  let left = rowLen * (scale - 1);
  while (left > 0) {
    // Lengths 3–258; never leave 1 or 2 bytes behind.
    let len = Math.min(left, 258);
    if (left - len > 0 && left - len < 3) len = left - 3;
    const li = lastLE(LEN_BASE, len);
    const sym = 257 + li;
    put(sym < 280 ? reverse(sym - 256, 7) : reverse(0xc0 + sym - 280, 8), sym < 280 ? 7 : 8);
    if (LEN_EXTRA[li]) put(len - LEN_BASE[li]!, LEN_EXTRA[li]!);
    put(reverse(dist, 5), 5);
    if (DIST_EXTRA[dist]) put(rowLen - DIST_BASE[dist]!, DIST_EXTRA[dist]!);
    left -= len;
  }
  put(0, 7); // end of block (symbol 256: seven zero bits)
  return { values, lengths };
}

const REPEATS = new Map<string, RepeatCode>();
function cachedRepeatCode(rowLen: number, scale: number): RepeatCode {
  const key = `${rowLen}|${scale}`;
  let r = REPEATS.get(key);
  if (!r) {
    r = repeatCode(rowLen, scale);
    if (REPEATS.size < 64) REPEATS.set(key, r);
  }
  return r;
}

let scratch = new Uint8Array(16 * 1024);

/** zlib stream (RFC 1950) of the image: stored rows and their repeats; see above. */
function zlibStream(qr: QrMatrix, margin: number, scale: number): Uint8Array {
  const n = qr.size;
  const cells = n + 2 * margin;
  const rowBytes = Math.ceil((cells * scale) / 8);
  const rowLen = rowBytes + 1;
  const { values, lengths } = cachedRepeatCode(rowLen, scale);
  let repeatBits = 3;
  for (const l of lengths) repeatBits += l;
  const capacity = 6 + cells * (rowLen + 6 + Math.ceil(repeatBits / 8) + 1);
  if (scratch.length < capacity) scratch = new Uint8Array(capacity);
  const out = scratch;
  const w = new BitWriter(out);
  w.put(0x78, 8); // CMF: deflate, 32 KiB window
  w.put(0x01, 8); // FLG: ((0x78 << 8) | 0x01) % 31 === 0
  const modules = qr.modules;
  let a = 1;
  let b = 0;
  for (let my = 0; my < cells; my++) {
    const last = my === cells - 1;
    // Stored block: header, pad to a byte, LEN, NLEN, the scanline.
    w.put(last && scale === 1 ? 1 : 0, 3);
    w.align();
    let at = w.n;
    out[at++] = rowLen & 0xff;
    out[at++] = rowLen >>> 8;
    out[at++] = ~rowLen & 0xff;
    out[at++] = (~rowLen >>> 8) & 0xff;
    out[at++] = 0; // filter: none
    const start = at;
    const y = my - margin;
    if (y < 0 || y >= n) {
      out.fill(0, at, at + rowBytes);
      at += rowBytes;
    } else {
      // Pixels MSB first, `scale` bits per module; quiet zone light.
      const left = margin * scale;
      out.fill(0, at, at + (left >>> 3));
      at += left >>> 3;
      let nb = left & 7; // bits pending in acc
      let acc = 0;
      const rowAt = y * n;
      for (let x = 0; x < n; x++) {
        const dark = modules[rowAt + x]!;
        for (let k = scale; k > 0; ) {
          const take = k < 16 ? k : 16;
          acc = (acc << take) | (dark ? (1 << take) - 1 : 0);
          nb += take;
          k -= take;
          while (nb >= 8) {
            nb -= 8;
            out[at++] = (acc >>> nb) & 0xff;
          }
          acc &= (1 << nb) - 1;
        }
      }
      if (nb > 0) out[at++] = (acc << (8 - nb)) & 0xff;
      out.fill(0, at, start + rowBytes);
      at = start + rowBytes;
    }
    // Adler-32 of the scanline, then of its copies: a copy adds S = Σc to A and rowLen·A + W to B,
    // W = Σ(rowLen − i)·c over the scanline's bytes (the filter byte is 0).
    let s = 0;
    let ws = 0;
    for (let i = start; i < at; i++) {
      const c = out[i]!;
      s += c;
      ws += (at - i) * c;
    }
    w.n = at;
    for (let r = 0; r < scale; r++) {
      b = (b + rowLen * a + ws) % 65521;
      a = (a + s) % 65521;
    }
    if (scale > 1) {
      w.put(last ? 0b011 : 0b010, 3); // BFINAL, BTYPE 01 (fixed Huffman)
      for (let i = 0; i < values.length; i++) w.put(values[i]!, lengths[i]!);
    }
  }
  w.align();
  const adler = ((b << 16) | a) >>> 0;
  out[w.n++] = adler >>> 24;
  out[w.n++] = (adler >>> 16) & 0xff;
  out[w.n++] = (adler >>> 8) & 0xff;
  out[w.n++] = adler & 0xff;
  return out.subarray(0, w.n);
}

/** Writes one PNG chunk (length, type, data, CRC-32 of type and data) into `out` at `at`. */
function putChunk(out: Buffer, at: number, type: string, data: Uint8Array): number {
  out.writeUInt32BE(data.length, at);
  out.write(type, at + 4, 'latin1');
  out.set(data, at + 8);
  out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + data.length)) >>> 0, at + 8 + data.length);
  return at + 12 + data.length;
}

const rgb = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const PALETTES = new Map<string, Uint8Array>();
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function qrPng(text: string, opts: QrPngOptions = {}): Buffer {
  const margin = opts.margin ?? 1;
  const qr = qrMatrix(text, opts.errorCorrectionLevel ?? 'M', opts.maskPattern ?? QR_DEFAULT_MASK);
  const cells = qr.size + 2 * margin;
  const scale = Math.max(1, Math.ceil((opts.width ?? 360) / cells));
  const px = cells * scale;
  const ihdr = new Uint8Array(13);
  ihdr[0] = px >>> 24;
  ihdr[1] = (px >>> 16) & 0xff;
  ihdr[2] = (px >>> 8) & 0xff;
  ihdr[3] = px & 0xff;
  ihdr.copyWithin(4, 0, 4); // height = width
  ihdr[8] = 1; // bit depth
  ihdr[9] = 3; // colour type: palette
  const light = opts.light ?? '#ffffff';
  const dark = opts.dark ?? '#000000';
  let plte = PALETTES.get(light + dark);
  if (!plte) {
    plte = Uint8Array.from([...rgb(light), ...rgb(dark)]);
    if (PALETTES.size < 16) PALETTES.set(light + dark, plte);
  }
  const idat = zlibStream(qr, margin, scale);
  const png = Buffer.allocUnsafe(8 + 25 + 18 + 12 + idat.length + 12);
  png.set(SIGNATURE, 0);
  let at = putChunk(png, 8, 'IHDR', ihdr);
  at = putChunk(png, at, 'PLTE', plte);
  at = putChunk(png, at, 'IDAT', idat);
  putChunk(png, at, 'IEND', new Uint8Array(0));
  return png;
}
