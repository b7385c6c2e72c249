// Mail requests the queue tests enqueue: a pay-link mail whose data passes its contract
// (src/mail/contracts.ts). `tag` keeps each file's dedupe keys, references and links apart.
import { type MailRequest } from '../../src/mail/outbox.ts';

/** The pay-link mail of order `n`: dedupe key `paylink:<tag>_<n>`, reference `<REF>-<n>`. */
export function paylinkRequest(n: number, over: Partial<MailRequest> = {}, tag = { key: 'ord', ref: 'REF', path: 'p' }): MailRequest {
  return {
    dedupeKey: `paylink:${tag.key}_${n}`,
    template: 'paylink',
    locale: 'en',
    to: [`shop${n}@merchant.test`],
    cc: [],
    replyTo: `shop${n}@merchant.test`,
    data: {
      merchantName: 'Bottega Rossi',
      reference: `${tag.ref}-${n}`,
      amountMinor: 1000 + n,
      currency: 'EUR',
      description: 'Chairs',
      customerName: '',
      expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      link: `http://localhost:3000/pay/${tag.path}${n}?e=1&s=x`,
      toCustomer: false,
    },
    ...over,
  };
}
