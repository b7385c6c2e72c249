// Outbound mail rendering. At start-up every MJML template is compiled ONCE into responsive HTML
// that still holds Handlebars slots, and that HTML is compiled with Handlebars; rendering a mail
// is then only a Handlebars call (plus a QR code for pay-links). Strings come from
// templates/locales/<lc>/mail.json with English as the fallback; values are formatted with Intl.
// The data contracts are in contracts.ts, the formatting helpers in format.ts and one preparer per
// template (data → placeholder values and view) in preparers/.
import { hash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import mjml2html from 'mjml';
import { qrPng, type QrPngOptions } from './qr-png.ts';
import { AppError } from '../domain/errors.ts';
import { formatMoney } from '../domain/money.ts';
import { type MailTemplate } from './contracts.ts';
import { receiptPdfFilename, renderReceiptPdf, type ReceiptPdf } from './receipt-pdf.ts';
import { BrandData, isTemplate, MAIL_TEMPLATES, parseMailData as parse, ReceiptData, type ReceiptFacts } from './contracts.ts';
import { brandColours } from '../domain/brand.ts';
import { compileSection, type CompiledSection, type Ctx, deepMerge, fillAll, formatDateTime, MAIL_LOCALES, oneLine, resolveLocale, type Strings, validTimeZone } from './format.ts';
import { PREPARERS } from './preparers/index.ts';
import { receiptPdfContent } from './preparers/receipt.ts';
import { partLine } from './preparers/part.ts';

export { MAIL_TEMPLATES } from './contracts.ts';
export { DEFAULT_TIME_ZONE, formatDateTime, MAIL_LOCALES, replySubject } from './format.ts';

/** The pay-link QR image: qrcode's symbol at level M (see qr-png.ts), shown at 160 px, drawn at ≥ 360 px. */
export const QR_OPTIONS: QrPngOptions = { errorCorrectionLevel: 'M', margin: 1, width: 360, dark: '#111827', light: '#ffffff' };

import { type MailAttachment } from './preparers/types.ts';

export type { MailAttachment };

export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
  attachments: MailAttachment[];
}

export interface RenderRequest {
  template: string;
  locale: string;
  data: Record<string, unknown>;
}

export interface MailRenderer {
  render(req: RenderRequest): Promise<RenderedMail>;
  /** The PDF receipt the receipt mails carry, from the same data: what the download routes serve. */
  receiptPdf(req: Omit<RenderRequest, 'template'>): Promise<ReceiptPdf>;
  /** How many times MJML ran: once per template at start-up, never per mail. */
  readonly compiledCount: number;
}

export interface MailRendererOptions {
  templatesDir: string;
  publicUrl: string;
  /** The bytes of a merchant's logo by its path (/brand/…), for the PDF receipt; no logo there without it. */
  logos?: (logoPath: string) => Promise<Buffer | null>;
}

/**
 * The button colours in templates/mail/partials/head.mjml are these placeholders, which appear
 * nowhere else: after MJML compiled a template they become the merchant's accent and the text
 * colour chosen for it (src/domain/brand.ts), so a look needs no compilation per merchant.
 */
export const BUTTON_BACKGROUND = '#4338cb';
export const BUTTON_TEXT = '#fffffe';
/** paymail's own button colours in mails (a merchant without a look of its own). */
export const DEFAULT_MAIL_BRAND = { accent: '#4338ca', onAccent: '#ffffff' };

/** The template context's `brand`: button colours, and the logo as an absolute URL. */
function mailBrandView(raw: unknown, publicUrl: string) {
  const parsed = BrandData.safeParse(raw);
  const b = parsed.success ? parsed.data : undefined;
  const colours = b?.accent ? brandColours(b.accent) : DEFAULT_MAIL_BRAND;
  return {
    accent: colours.accent,
    onAccent: colours.onAccent,
    ...(b?.logoPath && b.logoWidth && b.logoHeight ? { logoUrl: `${publicUrl.replace(/\/$/, '')}${b.logoPath}`, logoWidth: b.logoWidth, logoHeight: b.logoHeight } : {}),
  };
}

// ---- factory ----

// The [name, key] pairs of a `pick` map, computed once per map object (the paylink maps are constants).
const PICK_PAIRS = new WeakMap<Record<string, string>, Array<[string, string]>>();
function pickPairs(pick: Record<string, string>): Array<[string, string]> {
  let pairs = PICK_PAIRS.get(pick);
  if (!pairs) {
    pairs = Object.entries(pick);
    PICK_PAIRS.set(pick, pairs);
  }
  return pairs;
}

interface Compiled {
  html: Handlebars.TemplateDelegate;
  text: Handlebars.TemplateDelegate;
}

async function loadStrings(templatesDir: string): Promise<Map<string, Strings>> {
  const read = async (lc: string): Promise<Strings> =>
    JSON.parse(await readFile(path.join(templatesDir, 'locales', lc, 'mail.json'), 'utf8')) as Strings;
  const en = await read('en');
  const map = new Map<string, Strings>([['en', en]]);
  for (const lc of MAIL_LOCALES) {
    if (lc !== 'en') map.set(lc, deepMerge(en, await read(lc)));
  }
  return map;
}

export async function createMailRenderer(opts: MailRendererOptions): Promise<MailRenderer> {
  const mailDir = path.join(opts.templatesDir, 'mail');
  const strings = await loadStrings(opts.templatesDir);
  // Per locale: each template's section and `common`, split at placeholders once, here.
  const compiledStrings = new Map<string, Map<string, CompiledSection>>();
  for (const [lc, all] of strings) {
    compiledStrings.set(lc, new Map(Object.entries(all).map(([k, v]) => [k, compileSection(v)])));
  }
  const hbs = Handlebars.create();
  let compiledCount = 0;

  // Helpers read the locale and zone from the root context, so templates stay locale-agnostic.
  const root = (o: Handlebars.HelperOptions) => (o.data as { root: { _ctx: Ctx } }).root._ctx;
  hbs.registerHelper('money', (amountMinor: number, cur: string, o: Handlebars.HelperOptions) =>
    formatMoney(amountMinor, cur, root(o).intl),
  );
  hbs.registerHelper('datetime', (date: Date, o: Handlebars.HelperOptions) => formatDateTime(date, root(o).intl, root(o).timeZone));

  // Text-part partials (footer, receipt details), compiled here so they keep noEscape.
  for (const file of (await readdir(path.join(mailDir, 'partials'))).filter((f) => f.endsWith('.txt.hbs'))) {
    const source = await readFile(path.join(mailDir, 'partials', file), 'utf8');
    hbs.registerPartial(file.slice(0, -'.txt.hbs'.length), hbs.compile(source, { noEscape: true }));
  }

  const compiled = new Map<MailTemplate, Compiled>();
  for (const name of MAIL_TEMPLATES) {
    const file = path.join(mailDir, `${name}.mjml`);
    const source = await readFile(file, 'utf8');
    compiledCount++;
    // mjml 5 returns a Promise. Strict validation so a template mistake stops start-up.
    const out = await mjml2html(source, {
      filePath: file,
      ignoreIncludes: false,
      includePath: mailDir,
      validationLevel: 'strict',
      keepComments: false,
      // No web fonts: a mail should not make the reader's client call a third party.
      fonts: {},
    });
    if (out.errors.length > 0) {
      throw new AppError('MAIL_TEMPLATE_INVALID', `${name}.mjml: ${out.errors.map((e) => e.formattedMessage).join('; ')}`);
    }
    const textSource = await readFile(path.join(mailDir, `${name}.txt.hbs`), 'utf8');
    compiled.set(name, {
      html: hbs.compile(out.html.replaceAll(BUTTON_BACKGROUND, '{{brand.accent}}').replaceAll(BUTTON_TEXT, '{{brand.onAccent}}'), { strict: false }),
      // Plain text is not HTML: escaping would turn "&" into "&amp;".
      text: hbs.compile(textSource, { noEscape: true }),
    });
  }
  const publicHost = new URL(opts.publicUrl).host;

  async function receiptPdfOf(d: ReceiptFacts, lc: string, ctx: Ctx): Promise<ReceiptPdf> {
    const sections = compiledStrings.get(lc)!;
    const vars = { merchant: d.merchantName, receiptNumber: d.receiptNumber, host: publicHost };
    // A part of an order paid in parts (issue 13 part 1): its line, e.g. "Deposit received: 300.00 € of 1,000.00 €".
    const part = partLine(d.part, d.amountMinor, d.currency, ctx, 'paid');
    const partStrings = part ? fillAll(sections.get('part') ?? [], part.vars) : undefined;
    const content = receiptPdfContent(d, ctx, fillAll(sections.get('common') ?? [], vars), fillAll(sections.get('receiptPdf') ?? [], vars),
      part && partStrings ? { label: partStrings.label ?? '', line: partStrings[part.key] ?? '' } : undefined);
    const logo = d.brand?.logoPath && opts.logos ? await opts.logos(d.brand.logoPath).catch(() => null) : null;
    if (d.brand?.accent || logo) content.brand = { ...(d.brand?.accent ? { accent: d.brand.accent } : {}), ...(logo ? { logo } : {}) };
    return { filename: receiptPdfFilename(d.receiptNumber), content: await renderReceiptPdf(content) };
  }

  async function receiptPdf(req: Omit<RenderRequest, 'template'>): Promise<ReceiptPdf> {
    const { lc, intl } = resolveLocale(req.locale);
    return receiptPdfOf(parse(ReceiptData, 'receipt PDF', req.data), lc, { intl, timeZone: validTimeZone(req.data.timeZone as string | undefined) });
  }

  async function render(req: RenderRequest): Promise<RenderedMail> {
    if (!isTemplate(req.template)) {
      throw new AppError('MAIL_TEMPLATE_UNKNOWN', `unknown mail template "${req.template}"`);
    }
    const tpl = compiled.get(req.template)!;
    const { lc, intl } = resolveLocale(req.locale);
    const all = strings.get(lc)!;
    const section = (all[req.template] ?? {}) as Strings;
    const ctx: Ctx = { intl, timeZone: validTimeZone(req.data.timeZone as string | undefined) };
    const prep = PREPARERS[req.template](req.data, ctx, section);
    const vars = { ...prep.vars, host: publicHost };
    const sections = compiledStrings.get(lc)!;
    const t = fillAll(sections.get(req.template) ?? [], vars);
    if (prep.pick) for (const [name, key] of pickPairs(prep.pick)) t[name] = t[key] ?? '';
    const labels = fillAll(sections.get('common') ?? [], vars);
    const partText = prep.partKey ? (fillAll(sections.get('part') ?? [], vars)[prep.partKey] ?? '') : '';
    const subject = oneLine(t.subject ?? '');

    const attachments: MailAttachment[] = [];
    let qrCid = '';
    if (prep.qrLink) {
      qrCid = `qr.${hash('sha256', prep.qrLink, 'hex').slice(0, 16)}@paymail`;
      attachments.push({
        filename: 'pay-link-qr.png',
        contentType: 'image/png',
        cid: qrCid,
        // qrcode's symbol as a 1-bit PNG (src/mail/qr-png.ts): qrcode's own RGBA PNG was most of the render's CPU.
        content: qrPng(prep.qrLink, QR_OPTIONS),
      });
    }
    attachments.push(...(prep.attachments ?? []));
    if (prep.receipt) {
      const pdf = await receiptPdfOf(prep.receipt, lc, ctx);
      attachments.push({ ...pdf, contentType: 'application/pdf', cid: '', disposition: 'attachment' });
    }
    const model = {
      ...prep.view,
      _ctx: ctx,
      lang: lc,
      subject,
      preheader: t.preheader ?? '',
      t,
      labels,
      // The line about an order's part (issue 13 part 1); empty for an order paid at once.
      partLine: partText,
      qrCid,
      brand: mailBrandView(req.data['brand'], opts.publicUrl),
      publicUrl: opts.publicUrl,
      publicHost,
    };
    return { subject, html: tpl.html(model), text: tpl.text(model), attachments };
  }

  return {
    render,
    receiptPdf,
    get compiledCount() {
      return compiledCount;
    },
  };
}
