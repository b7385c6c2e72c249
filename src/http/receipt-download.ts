// Serves a PDF receipt as a download (the checkout's receipt page and the back office link to it).
import { type Context } from 'koa';
import { type ReceiptPdf } from '../mail/receipt-pdf.ts';

export function sendReceiptPdf(ctx: Context, pdf: ReceiptPdf): void {
  ctx.status = 200;
  ctx.type = 'application/pdf';
  // The name is letters, digits, "-" and "_" only (receiptPdfFilename): safe inside the quotes.
  ctx.set('Content-Disposition', `attachment; filename="${pdf.filename}"`);
  // Payment details behind a capability URL or a session: kept out of every cache.
  ctx.set('Cache-Control', 'no-store');
  ctx.body = pdf.content;
}
