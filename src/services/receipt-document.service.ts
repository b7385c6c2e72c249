// A paid order's receipt facts — what the receipt mails carry and the PDF receipt shows — and the
// PDF rendered again from them for the download links (the checkout's receipt page and the back
// office). PDFs are never stored: the same order gives the same facts and so the same document.
import { hasPlan, partView, type PartInfo } from '../domain/order-plan.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type MailRenderer } from '../mail/renderer.ts';
import { type ReceiptPdf } from '../mail/receipt-pdf.ts';
import { type ReceiptProofs } from './receipt-proof.service.ts';
import { withBrand } from './branding.service.ts';

type Proofs = Pick<ReceiptProofs, 'tokenFor' | 'verifyUrl'>;

/** The receipt data of a paid order (the mails add the customer and the link to it). */
export function receiptFacts(order: OrderDoc & { part?: PartInfo | undefined }, merchant: MerchantDoc, proofs?: Proofs) {
  const payment = order.payment!;
  const proof = proofs?.tokenFor(order, merchant);
  return {
    // A part of an order paid in parts (issue 13 part 1): which one, and the order's total.
    ...(order.part ? { part: { seq: order.part.seq, of: order.part.of, kind: order.part.kind, totalMinor: order.part.totalMinor } } : {}),
    receiptNumber: payment.receiptNumber!,
    merchantName: merchant.name,
    merchantEmail: merchant.email,
    reference: order.reference,
    amountMinor: order.amountMinor,
    currency: order.currency,
    description: order.description ?? '',
    card: {
      brand: payment.card?.brand,
      last4: payment.card?.last4 as string,
      expMonth: payment.card?.expMonth,
      expYear: payment.card?.expYear,
      ...(payment.card?.country ? { country: payment.card.country } : {}),
    },
    authCode: payment.authCode,
    paidAt: payment.paidAt!.toISOString(),
    timeZone: merchant.timezone,
    ...(proof ? { proof, verifyUrl: proofs!.verifyUrl(proof, merchant.timezone) } : {}),
    ...withBrand(merchant),
  };
}

export interface ReceiptDocuments {
  /**
   * The PDF receipt of a paid order in `locale`; undefined when the order has no payment. An order
   * paid in parts (issue 13 part 1) has one per part paid: `seq` picks it (default: the last paid).
   */
  pdfFor(order: OrderDoc, merchant: MerchantDoc, locale: string, seq?: number): Promise<ReceiptPdf | undefined>;
}

export function createReceiptDocuments(deps: { renderer: Pick<MailRenderer, 'receiptPdf'>; proofs?: Proofs | undefined }): ReceiptDocuments {
  return {
    async pdfFor(order, merchant, locale, seq) {
      if (hasPlan(order)) {
        if (order.status !== 'paid' && order.status !== 'partially_paid' && order.status !== 'cancelled') return undefined;
        const paid = (order.plan?.parts ?? []).filter((p) => p.payment?.receiptNumber && p.payment.paidAt);
        const part = seq === undefined ? paid.reduce<(typeof paid)[number] | undefined>((a, p) => (!a || p.payment!.paidAt! > a.payment!.paidAt! ? p : a), undefined) : paid.find((p) => p.seq === seq);
        if (!part) return undefined;
        return deps.renderer.receiptPdf({ locale, data: receiptFacts(partView(order, part.seq), merchant, deps.proofs) });
      }
      if (order.status !== 'paid' || !order.payment?.receiptNumber || !order.payment.paidAt || (seq !== undefined && seq !== 1)) return undefined;
      return deps.renderer.receiptPdf({ locale, data: receiptFacts(order, merchant, deps.proofs) });
    },
  };
}
