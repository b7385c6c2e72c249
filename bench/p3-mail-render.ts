// P3: CPU per pay-link mail render — createMailRenderer().render(), which fills the MJML
// compiled once at start-up (HTML and text parts, localized strings, money/date formatting,
// the QR code PNG) — ÷ a Handlebars-only render of the same data into the same compiled HTML and
// text templates; and, for contrast, naive mjml2html per mail. process.cpuUsage, in-process.
//   npx tsx bench/p3-mail-render.ts       BENCH_P3_RENDERS (default 300)
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import mjml2html from 'mjml';
import { createMailRenderer } from '../src/mail/renderer.ts';
import { TEMPLATES_DIR } from '../src/server.ts';
import { type BenchResult, fmt, printResult } from './lib.ts';

const RENDERS = Number(process.env.BENCH_P3_RENDERS ?? 300);
const MAIL_DIR = path.join(TEMPLATES_DIR, 'mail');

function data(i: number) {
  return {
    merchantName: 'Hotel Bellavista',
    reference: `BK-${4711 + i}`,
    amountMinor: 12990 + i,
    currency: 'EUR',
    description: 'Double room, 2 nights',
    customerName: 'Anna Rossi',
    expiresAt: new Date(Date.UTC(2026, 11, 31, 12)).toISOString(),
    link: `http://localhost:3000/pay/AbCdEfGh${i}?e=1798718400&s=abcdefghijklmnopqrstuvwxyz012345`,
    toCustomer: false,
  };
}

/** CPU microseconds per call of fn over n calls (after 20 warm-up calls). */
async function cpuPer(n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(i);
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

export async function runP3(): Promise<BenchResult> {
  const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: 'http://localhost:3000' });
  // Baseline: the same MJML compiled once, then Handlebars only (no strings, formatting or QR code work).
  const source = await readFile(path.join(MAIL_DIR, 'paylink.mjml'), 'utf8');
  const compiled = await mjml2html(source, { filePath: path.join(MAIL_DIR, 'paylink.mjml'), includePath: MAIL_DIR, validationLevel: 'soft', fonts: {} });
  const hbs = Handlebars.create();
  for (const f of (await readdir(path.join(MAIL_DIR, 'partials'))).filter((x) => x.endsWith('.txt.hbs'))) {
    hbs.registerPartial(f.slice(0, -'.txt.hbs'.length), hbs.compile(await readFile(path.join(MAIL_DIR, 'partials', f), 'utf8'), { noEscape: true }));
  }
  const html = hbs.compile(compiled.html);
  const text = hbs.compile(await readFile(path.join(MAIL_DIR, 'paylink.txt.hbs'), 'utf8'), { noEscape: true });
  const strings = JSON.parse(await readFile(path.join(TEMPLATES_DIR, 'locales/en/mail.json'), 'utf8')) as Record<string, unknown>;
  const vars = (i: number) => ({ ...data(i), amount: '€129.90', expires: '31 December 2026, 13:00', t: strings.paylink, labels: strings.common, lang: 'en', qrCid: 'qr@paymail' });

  const real = await cpuPer(RENDERS, (i) => renderer.render({ template: 'paylink', locale: 'en', data: data(i) }));
  const base = await cpuPer(RENDERS, (i) => {
    const v = vars(i);
    return [html(v), text(v)];
  });
  const naiveN = Math.max(10, Math.round(RENDERS / 10));
  const naive = await cpuPer(naiveN, async (i) => {
    const v = vars(i);
    const out = await mjml2html(hbs.compile(source)(v), { filePath: path.join(MAIL_DIR, 'paylink.mjml'), includePath: MAIL_DIR, validationLevel: 'soft', fonts: {} });
    return [out.html, text(v)];
  });
  const ratio = real / base;
  const d = 'none (in-process rendering, no database)';
  return {
    id: 'P3',
    title: 'CPU per pay-link mail render ÷ Handlebars-only render',
    database: d,
    lines: [
      `${RENDERS} renders each (naive: ${naiveN}), CPU time (user + system) per mail`,
      `| | CPU per mail | ÷ baseline |`,
      `|---|---|---|`,
      `| Handlebars only, precompiled MJML (baseline) | ${fmt(base / 1000, 3)} ms | 1.00 |`,
      `| createMailRenderer().render (paymail) | ${fmt(real / 1000, 3)} ms | ${fmt(ratio)} |`,
      `| naive mjml2html per mail (contrast) | ${fmt(naive / 1000, 3)} ms | ${fmt(naive / base, 1)} |`,
    ],
    checks: [{ name: 'P3 CPU ratio', value: ratio, target: '≤ 1.5', ok: ratio <= 1.5 }],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP3());
