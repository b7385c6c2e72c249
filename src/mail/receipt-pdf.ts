// The PDF receipt: one A4 page laid out from already formatted, localised strings (the renderer
// makes them from the receipt mail's data), with the signed proof's verify URL as a QR code so a
// printed receipt can still be checked. Nothing is stored: the same content gives the same bytes
// (the document date is the payment's, the QR is drawn as vector runs), so the mail attachment
// and a later download are one document.
//
// Fonts: PDF's standard Helvetica and Courier in WinAnsi encoding cover the five languages
// (accents, €, ß, ñ, ’ « ») without embedding a font; characters outside it (a merchant name in
// another script) are folded to their base letter or "?" rather than printed as garbage.
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';

export interface ReceiptPdfRow {
  label: string;
  value: string;
}

export interface ReceiptPdfContent {
  /** BCP 47 tag of the document's language. */
  lang: string;
  /** Document metadata title, e.g. "Payment receipt RCPT-7Q2M9XK4". */
  documentTitle: string;
  heading: string;
  merchantName: string;
  /** The merchant's contact line ("Contact: shop@example.com"); omitted when unknown. */
  contact?: ReceiptPdfRow | undefined;
  amount: ReceiptPdfRow;
  rows: ReceiptPdfRow[];
  proof?: { title: string; intro: string; scan: string; verifyUrl: string } | undefined;
  footer: string;
  /** The document's creation date: the payment's, so the bytes depend on the receipt alone. */
  createdAt: Date;
  /** The merchant's look: a band of its accent at the top and its logo (PNG/JPEG bytes) above the heading. */
  brand?: { accent?: string; logo?: Buffer };
}

export interface ReceiptPdf {
  filename: string;
  content: Buffer;
}

/** receipt-<number>.pdf with only letters, digits, "-" and "_": safe in a Content-Disposition header. */
export function receiptPdfFilename(receiptNumber: string): string {
  const safe = receiptNumber.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64);
  return `receipt-${safe || 'paymail'}.pdf`;
}

// WinAnsiEncoding (PDF 1.7 annex D) beyond Latin-1: what the standard fonts can show.
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');

function printable(ch: string): boolean {
  const code = ch.codePointAt(0)!;
  return ch === '\n' || (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(ch);
}

function winAnsiChar(ch: string): string {
  if (printable(ch)) return ch;
  // Intl puts narrow no-break spaces in French amounts and English times.
  if (/\s/u.test(ch)) return ' ';
  const base = ch.normalize('NFKD').replace(/\p{M}/gu, '');
  return base && [...base].every(printable) ? base : '?';
}

/** The text as the standard fonts can print it. */
export function toWinAnsi(s: string): string {
  return Array.from(s.replace(/\r\n?/g, '\n'), winAnsiChar).join('');
}

const PAGE = { width: 595.28, height: 841.89, margin: 56 };
const INK = '#111827';
const MUTED = '#6b7280';
const RULE = '#e5e7eb';
const QR_SIZE = 180;

/**
 * A long unbroken string (the verify URL) cut into lines of `perLine` characters. No line ends
 * with "-": a reader, or a text extractor, would take it for a hyphenation and drop it.
 */
export function hardWrap(text: string, perLine: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > perLine) {
    let cut = perLine;
    while (cut > 1 && rest[cut - 1] === '-') cut--;
    lines.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest) lines.push(rest);
  return lines;
}

/** Draws the QR code of `text` as filled runs of dark modules (crisp at any print size). */
function drawQr(doc: PDFKit.PDFDocument, text: string, x: number, y: number, size: number): void {
  const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const n = qr.modules.size;
  const quiet = 4;
  const cell = size / (n + 2 * quiet);
  doc.save();
  doc.rect(x, y, size, size).fill('#ffffff');
  for (let r = 0; r < n; r++) {
    let c = 0;
    while (c < n) {
      if (!qr.modules.get(r, c)) {
        c++;
        continue;
      }
      const start = c;
      while (c < n && qr.modules.get(r, c)) c++;
      doc.rect(x + (quiet + start) * cell, y + (quiet + r) * cell, (c - start) * cell, cell);
    }
  }
  doc.fill('#000000');
  doc.restore();
}

export function renderReceiptPdf(content: ReceiptPdfContent): Promise<Buffer> {
  const t = toWinAnsi;
  const doc = new PDFDocument({
    size: 'A4',
    margin: PAGE.margin,
    lang: content.lang,
    displayTitle: true,
    info: { Title: t(content.documentTitle), Author: t(content.merchantName), Creator: 'paymail', Producer: 'paymail', CreationDate: content.createdAt },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const left = PAGE.margin;
  const width = PAGE.width - 2 * PAGE.margin;
  const labelWidth = 170;
  const valueX = left + labelWidth + 12;
  const valueWidth = width - labelWidth - 12;

  let top = PAGE.margin;
  if (content.brand?.accent) doc.rect(0, 0, PAGE.width, 8).fill(content.brand.accent);
  if (content.brand?.logo) {
    try {
      // At most 40 pt high and 200 pt wide, proportions kept; a logo pdfkit cannot read is left out.
      doc.image(content.brand.logo, left, top, { fit: [200, 40] });
      top += 52;
    } catch {
      /* the receipt matters more than the logo */
    }
  }
  doc.font('Helvetica-Bold').fontSize(20).fillColor(INK).text(t(content.heading), left, top, { width });
  doc.moveDown(0.6);
  doc.font('Helvetica-Bold').fontSize(14).text(t(content.merchantName), { width });
  if (content.contact) doc.font('Helvetica').fontSize(10).fillColor(MUTED).text(t(`${content.contact.label}: ${content.contact.value}`), { width });
  doc.moveDown(1.2);
  doc.font('Helvetica').fontSize(10).fillColor(MUTED).text(t(content.amount.label), { width });
  doc.font('Helvetica-Bold').fontSize(24).fillColor(INK).text(t(content.amount.value), { width });
  doc.moveDown(0.8);

  // The facts, one ruled row each: label on the left, value on the right (wrapping when long).
  for (const row of content.rows) {
    const y = doc.y;
    doc.moveTo(left, y).lineTo(left + width, y).lineWidth(0.5).strokeColor(RULE).stroke();
    const top = y + 7;
    doc.font('Helvetica').fontSize(10).fillColor(MUTED).text(t(row.label), left, top, { width: labelWidth });
    const afterLabel = doc.y;
    doc.font('Helvetica').fontSize(10.5).fillColor(INK).text(t(row.value), valueX, top, { width: valueWidth });
    doc.y = Math.max(afterLabel, doc.y) + 6;
  }
  doc.moveTo(left, doc.y).lineTo(left + width, doc.y).lineWidth(0.5).strokeColor(RULE).stroke();

  if (content.proof) {
    const p = content.proof;
    doc.y += 22;
    doc.font('Helvetica-Bold').fontSize(11).fillColor(INK).text(t(p.title), left, doc.y, { width });
    doc.font('Helvetica').fontSize(9).fillColor(MUTED).text(t(p.intro), { width });
    const top = doc.y + 10;
    drawQr(doc, p.verifyUrl, left, top, QR_SIZE);
    const textX = left + QR_SIZE + 16;
    const textWidth = width - QR_SIZE - 16;
    doc.font('Helvetica').fontSize(9).fillColor(INK).text(t(p.scan), textX, top + 6, { width: textWidth });
    doc.moveDown(0.5);
    // The URL itself, for typing it in: monospaced (Courier is 0.6 em wide), cut at fixed widths.
    const urlSize = 6.5;
    const perLine = Math.floor(textWidth / (0.6 * urlSize));
    doc.font('Courier').fontSize(urlSize).fillColor(INK).text(hardWrap(t(p.verifyUrl), perLine).join('\n'), textX, doc.y, { width: textWidth });
    doc.y = Math.max(doc.y, top + QR_SIZE) + 10;
  }

  doc.font('Helvetica').fontSize(8.5).fillColor(MUTED).text(t(content.footer), left, Math.max(doc.y + 14, PAGE.height - PAGE.margin - 24), { width });
  doc.end();
  return done;
}
