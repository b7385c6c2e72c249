// P3: CPU per pay-link mail render — createMailRenderer().render(), which fills the MJML
// compiled once at start-up (HTML and text parts, localized strings, money/date formatting,
// the QR code PNG) — ÷ the straightforward implementation (issue 11): the same precompiled MJML
// filled by Handlebars with the same view, plus the `qrcode` library's PNG of the link
// (QRCode.toBuffer, same size and colours). Also shown: Handlebars-only renders (no QR) and, for
// contrast, naive mjml2html per mail. process.cpuUsage, in-process.
// Steady state: each variant is warmed up (JIT tiers) before it is timed, then timed in alternating
// rounds and the median round kept (the machine is shared and noisy). 300 calls after a 20-call
// warm-up, as first measured, timed mostly V8 compiling Handlebars' template functions.
// Two baselines: the original one (kept for the check: its MJML compile ignores the includes, and
// its view has raw strings with unfilled placeholders and no subject/heading/intro/footer — a
// shorter mail, so a cheaper fill), and one that fills the template as the renderer compiles it
// with the complete view the renderer builds (same HTML and text to the byte, asserted).
//   npx tsx bench/p3-mail-render.ts       BENCH_P3_RENDERS per round (default 1000), BENCH_P3_ROUNDS (5)
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import mjml2html from 'mjml';
import QRCode from 'qrcode';
import { formatMoney } from '../src/domain/money.ts';
import { qrPng } from '../src/mail/qr-png.ts';
import { BUTTON_BACKGROUND, BUTTON_TEXT, createMailRenderer, DEFAULT_MAIL_BRAND, DEFAULT_TIME_ZONE, formatDateTime, QR_OPTIONS } from '../src/mail/renderer.ts';
import { TEMPLATES_DIR } from '../src/server.ts';
import { type BenchResult, fmt, printResult } from './lib.ts';

const RENDERS = Number(process.env.BENCH_P3_RENDERS ?? 1000);
const ROUNDS = Number(process.env.BENCH_P3_ROUNDS ?? 5);
const WARM_UP = 500;
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

/** CPU microseconds per call of fn over n calls (after `warmUp` untimed calls). */
async function cpuPer(n: number, fn: (i: number) => unknown, warmUp = 20): Promise<number> {
  for (let i = 0; i < warmUp; i++) await fn(i);
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

  // The complete view the renderer fills (strings filled and picked for a merchant mail), built
  // here outside the timing; its output must equal the renderer's, byte for byte.
  const en = strings as Record<string, Record<string, string>>;
  const fillIn = (section: Record<string, string>, v: Record<string, string | number>) =>
    Object.fromEntries(Object.entries(section).map(([k, x]) => [k, x.replace(/\{(\w+)\}/g, (_, n: string) => String(v[n] ?? ''))]));
  const fullView = (i: number) => {
    const d = data(i);
    const amount = formatMoney(d.amountMinor, d.currency, 'en');
    const expires = formatDateTime(new Date(d.expiresAt), 'en', DEFAULT_TIME_ZONE);
    const v = { amount, merchant: d.merchantName, reference: d.reference, expires, customerName: d.customerName, host: 'localhost:3000' };
    const t: Record<string, string> = fillIn(en.paylink!, v);
    for (const k of ['subject', 'preheader', 'heading', 'intro', 'footer']) t[k] = t[`${k}Merchant`]!;
    const qrCid = `qr.${createHash('sha256').update(d.link).digest('hex').slice(0, 16)}@paymail`;
    return { ...d, amount, expires, _ctx: { intl: 'en', timeZone: DEFAULT_TIME_ZONE }, lang: 'en', subject: t.subject, preheader: t.preheader, t, labels: fillIn(en.common!, v), qrCid, publicUrl: 'http://localhost:3000', publicHost: 'localhost:3000' };
  };
  // Compiled as the renderer compiles it: with `ignoreIncludes: false`, so the shared head (title,
  // preheader) and footer includes are in it; the original baseline's compile above leaves them out.
  const fullCompiled = await mjml2html(source, { filePath: path.join(MAIL_DIR, 'paylink.mjml'), ignoreIncludes: false, includePath: MAIL_DIR, validationLevel: 'strict', keepComments: false, fonts: {} });
  // The mails here have no merchant look: the button's placeholder colours are paymail's own.
  const unbranded = fullCompiled.html.replaceAll(BUTTON_BACKGROUND, DEFAULT_MAIL_BRAND.accent).replaceAll(BUTTON_TEXT, DEFAULT_MAIL_BRAND.onAccent);
  const fullHtml = hbs.compile(unbranded, { strict: false });
  const views = Array.from({ length: WARM_UP + RENDERS }, (_, i) => fullView(i));
  const check = await renderer.render({ template: 'paylink', locale: 'en', data: data(0) });
  if (fullHtml(views[0]) !== check.html || text(views[0]) !== check.text) throw new Error('P3: the complete-view baseline does not render the same mail');

  const variants = {
    real: (i: number) => renderer.render({ template: 'paylink', locale: 'en', data: data(i) }),
    base: (i: number) => {
      const v = vars(i);
      return [html(v), text(v)];
    },
    full: (i: number) => [fullHtml(views[i]), text(views[i])],
    straightforward: async (i: number) => [
      fullHtml(views[i]),
      text(views[i]),
      await QRCode.toBuffer(views[i]!.link, { type: 'png', errorCorrectionLevel: 'M', margin: QR_OPTIONS.margin, width: QR_OPTIONS.width, color: { dark: `${QR_OPTIONS.dark}ff`, light: `${QR_OPTIONS.light}ff` } }),
    ],
  };
  // qrcode's PNG costs milliseconds: fewer calls per round for that variant (CPU per call is what counts).
  const callsPerRound = (k: string) => (k === 'straightforward' ? Math.max(50, Math.round(RENDERS / 10)) : RENDERS);
  const rounds: Record<keyof typeof variants, number[]> = { real: [], base: [], full: [], straightforward: [] };
  for (const [k, fn] of Object.entries(variants)) await cpuPer(k === 'straightforward' ? 50 : WARM_UP, fn, 0);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, fn] of Object.entries(variants)) rounds[k as keyof typeof variants].push(await cpuPer(callsPerRound(k), fn, 0));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const real = median(rounds.real);
  const base = median(rounds.base);
  const full = median(rounds.full);
  const straightforward = median(rounds.straightforward);
  const qrRounds: number[] = [];
  for (let r = 0; r < 3; r++) qrRounds.push(await cpuPer(RENDERS, (i) => qrPng(data(i).link, QR_OPTIONS), WARM_UP));
  const qr = median(qrRounds);
  const naiveN = 30;
  const naive = await cpuPer(naiveN, async (i) => {
    const v = vars(i);
    const out = await mjml2html(hbs.compile(source)(v), { filePath: path.join(MAIL_DIR, 'paylink.mjml'), includePath: MAIL_DIR, validationLevel: 'soft', fonts: {} });
    return [out.html, text(v)];
  });
  const ratio = real / straightforward;
  const d = 'none (in-process rendering, no database)';
  return {
    id: 'P3',
    title: 'CPU per pay-link mail render ÷ precompiled MJML + Handlebars + qrcode PNG',
    database: d,
    lines: [
      `${ROUNDS} alternating rounds of ${RENDERS} renders each (the qrcode-PNG baseline: ${callsPerRound('straightforward')}) after ${WARM_UP} untimed (median round; naive: ${naiveN} after 20), CPU time (user + system) per mail; the pay-link QR PNG alone (src/mail/qr-png.ts): ${fmt(qr / 1000, 3)} ms`,
      `| | CPU per mail | ÷ baseline |`,
      `|---|---|---|`,
      `| precompiled MJML + Handlebars (complete view) + qrcode PNG of the link (baseline) | ${fmt(straightforward / 1000, 3)} ms | 1.00 |`,
      `| Handlebars only, precompiled MJML, short view (no QR) | ${fmt(base / 1000, 3)} ms | ${fmt(base / straightforward)} |`,
      `| Handlebars only, the complete view the renderer fills (same HTML and text, no QR) | ${fmt(full / 1000, 3)} ms | ${fmt(full / straightforward)} |`,
      `| createMailRenderer().render (paymail) | ${fmt(real / 1000, 3)} ms | ${fmt(ratio)} |`,
      `| naive mjml2html per mail (contrast) | ${fmt(naive / 1000, 3)} ms | ${fmt(naive / straightforward, 1)} |`,
    ],
    checks: [{ name: 'P3 CPU ratio', value: ratio, target: '≤ 1.0', ok: ratio <= 1.0 }],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP3());
