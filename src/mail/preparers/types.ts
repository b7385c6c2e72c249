// What a template's preparer gives the renderer (src/mail/renderer.ts): placeholder values for its
// locale strings, the view its Handlebars templates read, and what the mail carries besides.
import { type ReceiptFacts } from '../contracts.ts';
import { type Ctx, type Strings } from '../format.ts';

export interface Prepared {
  /** Placeholder values for this template's strings (`{amount}`, `{merchant}`, …). */
  vars: Record<string, string | number>;
  /** Variant strings shown under a generic name, e.g. { subject: 'subjectCustomer' }. */
  pick?: Record<string, string>;
  view: Record<string, unknown>;
  qrLink?: string;
  /** Files and inline images this mail carries besides the QR code. */
  attachments?: MailAttachment[];
  /** The key in mail.json's `part` section of the line about an order's part (issue 13 part 1, preparers/part.ts). */
  partKey?: string;
  /** A receipt mail's facts: the PDF receipt is attached, rendered from them. */
  receipt?: ReceiptFacts;
}

export type Preparer = (data: Record<string, unknown>, ctx: Ctx, t: Strings) => Prepared;

export interface MailAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
  /** Content-ID referenced from the HTML as `cid:<cid>` (inline image). */
  cid: string;
  /** 'attachment' for files the reader saves (the recap CSV); inline images by default. */
  disposition?: 'inline' | 'attachment';
}
