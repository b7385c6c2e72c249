// Deterministic generator of malformed and hostile inbound mails for the robustness run and the
// intake benchmark. Mail `i` of seed `s` depends only on (s, i), so any failure is reproducible
// alone (`hostileMail(seed, i)`); the first KINDS.length indexes cover every kind once, so even a
// short run exercises all of them.
import { Buffer } from 'node:buffer';

export interface HostileMail {
  index: number;
  kind: HostileKind;
  raw: Buffer;
}

export interface GeneratorOptions {
  /** Recipient (the merchant's inbound address) and sender written into the headers. */
  to: string;
  from: string;
}

/** mulberry32: a small, fast PRNG; good enough to vary test inputs, and seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  next(): number;
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
  word(): string;
}

function rngFor(seed: number, index: number): Rng {
  const next = prng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    bytes(n) {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = (next() * 256) | 0;
      return b;
    },
    word: () => Array.from({ length: int(2, 9) }, () => String.fromCharCode(97 + int(0, 25))).join(''),
  };
}

const CRLF = '\r\n';

function headers(g: Rng, o: GeneratorOptions, index: number, extra: string[] = []): string {
  return [
    `From: ${o.from}`,
    `To: ${o.to}`,
    `Subject: hostile ${index} ${g.word()}`,
    `Message-ID: <hostile-${index}-${g.int(0, 1e9)}@robustness.test>`,
    'Date: Mon, 1 Jun 2026 10:00:00 +0200',
    'MIME-Version: 1.0',
    ...extra,
  ].join(CRLF);
}

/** A plausible order body (so some hostile mails are "nearly valid"). */
function orderLines(g: Rng): string {
  return [`Amount: ${g.int(1, 999)},${g.int(10, 99)} EUR`, `Reference: R-${g.int(1, 1e6)}`, `Description: ${g.word()} ${g.word()}`].join(CRLF);
}

function multipart(g: Rng, o: GeneratorOptions, index: number): string {
  const b = `b${g.int(0, 1e9)}`;
  return (
    headers(g, o, index, [`Content-Type: multipart/mixed; boundary="${b}"`]) +
    CRLF + CRLF +
    `--${b}${CRLF}Content-Type: text/plain; charset=utf-8${CRLF}${CRLF}${orderLines(g)}${CRLF}` +
    `--${b}${CRLF}Content-Type: text/html; charset=utf-8${CRLF}${CRLF}<p>${g.word()}</p>${CRLF}` +
    `--${b}${CRLF}Content-Type: application/octet-stream; name="x.bin"${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}` +
    g.bytes(g.int(100, 3000)).toString('base64').replace(/.{76}/g, `$&${CRLF}`) + CRLF +
    `--${b}--${CRLF}`
  );
}

type Build = (g: Rng, o: GeneratorOptions, index: number) => string | Buffer;

// Each kind: a short name and how to build it. Sizes are kept modest (the average mail is a few
// KB) except for the deliberate giants, so 10,000 mails fit in a few hundred MB of storage.
const BUILDERS = {
  'truncated-mime': (g, o, i) => {
    const full = multipart(g, o, i);
    return full.slice(0, g.int(10, full.length - 1));
  },
  'broken-boundary': (g, o, i) => {
    const variant = g.int(0, 4);
    const b = `B${g.int(0, 1e6)}`;
    const declared = [`boundary="${b}"`, `boundary="other"`, '', 'boundary=""', `boundary="${'-'.repeat(200)}"`][variant]!;
    const used = variant === 4 ? '-'.repeat(200) : b;
    const close = g.next() < 0.5 ? `--${used}--${CRLF}` : '';
    return (
      headers(g, o, i, [`Content-Type: multipart/mixed; ${declared}`]) + CRLF + CRLF +
      `--${used}${CRLF}Content-Type: text/plain${CRLF}${CRLF}${orderLines(g)}${CRLF}--${used}${CRLF}--${used}${CRLF}` +
      `Content-Type: multipart/alternative; boundary="${used}"${CRLF}${CRLF}--${used}${CRLF}${close}`
    );
  },
  'huge-header': (g, o, i) => {
    const variant = g.int(0, 2);
    if (variant === 0) return headers(g, o, i, [`X-Huge: ${'h'.repeat(g.int(16, 256) * 1024)}`]) + CRLF + CRLF + orderLines(g);
    if (variant === 1) {
      // Thousands of short fields.
      const lines = Array.from({ length: g.int(1000, 10_000) }, (_, n) => `X-F${n}: ${g.word()}`);
      return headers(g, o, i, lines) + CRLF + CRLF + orderLines(g);
    }
    // One subject folded over thousands of lines, full of encoded words.
    const folded = Array.from({ length: g.int(500, 4000) }, () => `=?utf-8?B?${Buffer.from(g.word()).toString('base64')}?=`).join(`${CRLF} `);
    return [`From: ${o.from}`, `To: ${o.to}`, `Subject: ${folded}`, `Message-ID: <hh-${i}@robustness.test>`].join(CRLF) + CRLF + CRLF + orderLines(g);
  },
  'binary-junk': (g, o, i) => {
    const junk = g.bytes(g.int(1, 64 * 1024));
    return g.next() < 0.5 ? junk : Buffer.concat([Buffer.from(headers(g, o, i) + CRLF + CRLF), junk]);
  },
  'deep-nesting': (g, o, i) => {
    const depth = g.int(50, 1500);
    let open = '';
    let close = '';
    for (let d = 0; d < depth; d++) {
      open += `--n${d}${CRLF}Content-Type: multipart/mixed; boundary="n${d + 1}"${CRLF}${CRLF}`;
      close = `--n${d}--${CRLF}` + close;
    }
    const inner = `--n${depth}${CRLF}Content-Type: text/plain${CRLF}${CRLF}${orderLines(g)}${CRLF}--n${depth}--${CRLF}`;
    return headers(g, o, i, ['Content-Type: multipart/mixed; boundary="n0"']) + CRLF + CRLF + open + inner + (g.next() < 0.7 ? close : '');
  },
  'nested-rfc822': (g, o, i) => {
    const depth = g.int(20, 500);
    let body = orderLines(g);
    for (let d = 0; d < depth; d++) body = `Subject: level ${d}${CRLF}Content-Type: message/rfc822${CRLF}${CRLF}${body}`;
    return headers(g, o, i, ['Content-Type: message/rfc822']) + CRLF + CRLF + body;
  },
  'many-parts': (g, o, i) => {
    const b = 'mp';
    const parts = Array.from({ length: g.int(200, 2000) }, (_, n) => `--${b}${CRLF}Content-Type: text/plain; name="p${n}.txt"${CRLF}Content-Disposition: attachment${CRLF}${CRLF}${n}${CRLF}`);
    return headers(g, o, i, [`Content-Type: multipart/mixed; boundary="${b}"`]) + CRLF + CRLF + parts.join('') + `--${b}--${CRLF}`;
  },
  'invalid-charset': (g, o, i) => {
    const charset = g.pick(['x-unknown-42', 'utf-7', 'utf-8', 'iso-2022-jp', 'utf-16', '"; drop', 'windows-9999', '']);
    const body = Buffer.concat([Buffer.from(orderLines(g) + CRLF), g.bytes(g.int(10, 2000)), Buffer.from('\x1b$B\x1b(\xff\xfe\xc3\x28')]);
    return Buffer.concat([Buffer.from(headers(g, o, i, [`Content-Type: text/plain; charset=${charset}`]) + CRLF + CRLF), body]);
  },
  'bad-base64': (g, o, i) => {
    const good = Buffer.from(orderLines(g)).toString('base64');
    const bad = g.pick([
      good.replace(/[A-Z]/g, '!'),
      good.slice(0, -3),
      '===='.repeat(g.int(10, 500)),
      good + '\x00\xff' + good,
      g.bytes(g.int(100, 5000)).toString('latin1'),
      'A'.repeat(g.int(1, 3)),
    ]);
    return headers(g, o, i, ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64']) + CRLF + CRLF + bad;
  },
  'bad-quoted-printable': (g, o, i) => {
    const bad = g.pick(['=ZZ=Q=', '='.repeat(g.int(1, 5000)), `Amount: 12=${CRLF}=${CRLF}=${CRLF},50`, '=C3=', '=\r'.repeat(3000), `${orderLines(g)}=`]);
    return headers(g, o, i, ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable']) + CRLF + CRLF + bad;
  },
  'nul-bytes': (g, o, i) => {
    const nul = '\x00'.repeat(g.int(1, 100));
    return `From: ${o.from}${nul}${CRLF}To: ${o.to}${CRLF}Subject: nul${nul}subject${CRLF}Message-ID: <nul-${i}@robustness.test>${CRLF}${CRLF}Amount:${nul} 10${CRLF}${nul}${orderLines(g)}${nul}`;
  },
  'header-only': (g, o, i) => {
    const variant = g.int(0, 3);
    if (variant === 0) return headers(g, o, i);
    if (variant === 1) return headers(g, o, i) + CRLF + CRLF;
    if (variant === 2) return `Subject: only ${i}`;
    return `X-Nothing: ${g.word()}${CRLF}`;
  },
  'eight-bit-headers': (g, o, i) =>
    Buffer.concat([
      Buffer.from(`From: ${o.from}${CRLF}To: ${o.to}${CRLF}Subject: `),
      Buffer.from('Bestellung für Café ✓ ', 'utf8'),
      Buffer.from([0xe9, 0xff, 0xfe, 0x80, 0xc0]),
      Buffer.from(` =?utf-8?B?!!!?= =?x-bad?Q?=ZZ?= =?utf-8?Q?${'=E2'.repeat(g.int(1, 200))}?=${CRLF}`),
      Buffer.from(`X-Latin: \xe0\xe8\xec\xf2\xf9${CRLF}Message-ID: <8bit-${i}@robustness.test>${CRLF}${CRLF}`, 'latin1'),
      Buffer.from(orderLines(g)),
    ]),
  'overlong-lines': (g, o, i) => headers(g, o, i) + CRLF + CRLF + orderLines(g) + CRLF + 'x'.repeat(g.int(20_000, 300_000)),
  'mixed-line-endings': (g, o, i) => (headers(g, o, i) + CRLF + CRLF + orderLines(g)).replace(/\r\n/g, () => g.pick(['\r', '\n', '\r\n', '\n\r', '\r\r\n'])),
  'bad-content-type': (g, o, i) => {
    const ct = g.pick([';;;;', 'multipart/mixed', 'multipart/', 'text/html; charset', '/', 'x'.repeat(5000), 'multipart/mixed; boundary=a; boundary=b', 'application/ms-tnef']);
    return headers(g, o, i, [`Content-Type: ${ct}`, `Content-Disposition: attachment; filename="${'../'.repeat(g.int(1, 300))}etc/passwd"`]) + CRLF + CRLF + orderLines(g);
  },
  'hostile-html': (g, o, i) => {
    const n = g.int(1000, 20_000);
    const html = g.pick(['<div>'.repeat(n), '<!--'.repeat(n), '<a href="'.repeat(n), '&#'.repeat(n) + '9999999999;', `<table>${'<tr><td>Amount: 1</td>'.repeat(n)}`]);
    return headers(g, o, i, ['Content-Type: text/html; charset=utf-8']) + CRLF + CRLF + html;
  },
  'hostile-labels': (g, o, i) =>
    headers(g, o, i, ['Content-Type: text/plain; charset=utf-8']) + CRLF + CRLF +
    g.pick([
      'Amount: 1e309',
      'Amount: 99999999999999999999999999,99 EUR',
      'Amount: -0,01',
      `Amount: ${'9'.repeat(5000)}`,
      `Reference: ${'R'.repeat(10_000)}${CRLF}Amount: 1`,
      'Amount: 1\r\nAmount: 2\r\n'.repeat(g.int(10, 2000)),
      `Expiry: 99999999 days${CRLF}Amount: 5`,
      `Email: ${'a'.repeat(3000)}@${'b'.repeat(3000)}${CRLF}Amount: 5`,
    ]),
  'empty': () => '',
  // The giant: a 10 MB text part (only where index % 1000 === 999, and once among the first kinds).
  'ten-mb-text': (g, o, i) => {
    const line = `${g.word()} lorem ipsum dolor sit amet ${g.word()}${CRLF}`;
    const body = line.repeat(Math.ceil((10 * 1024 * 1024) / line.length));
    return headers(g, o, i, ['Content-Type: text/plain; charset=utf-8']) + CRLF + CRLF + orderLines(g) + CRLF + body;
  },
} satisfies Record<string, Build>;

export type HostileKind = keyof typeof BUILDERS;
export const KINDS = Object.keys(BUILDERS) as HostileKind[];
/** The large kinds come a third as often as the small ones (storage, not parsing, is the limit). */
const HEAVY: ReadonlySet<HostileKind> = new Set(['huge-header', 'binary-junk', 'deep-nesting', 'many-parts', 'overlong-lines', 'hostile-html']);
const WEIGHTED = KINDS.filter((k) => k !== 'ten-mb-text').flatMap((k) => (HEAVY.has(k) ? [k] : [k, k, k]));

export function hostileMail(seed: number, index: number, o: GeneratorOptions): HostileMail {
  const g = rngFor(seed, index);
  const kind: HostileKind =
    index < KINDS.length ? KINDS[index]! : index % 1000 === 999 ? 'ten-mb-text' : g.pick(WEIGHTED);
  const built = BUILDERS[kind](g, o, index);
  return { index, kind, raw: typeof built === 'string' ? Buffer.from(built, 'latin1') : built };
}

export function* hostileMails(seed: number, count: number, o: GeneratorOptions): Generator<HostileMail> {
  for (let i = 0; i < count; i++) yield hostileMail(seed, i, o);
}
