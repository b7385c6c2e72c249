// The checkout form at the HTTP boundary. Every field is a bounded string; anything else (missing,
// repeated, too long) becomes '' and is then reported by the card checks like an empty field.
import { z } from 'zod';

const field = (max: number) => z.string().max(max).catch('');

export const CheckoutFormBody = z.object({
  number: field(40),
  expiry: field(10),
  cvc: field(8),
  holder: field(120),
  email: field(254),
});
export type CheckoutFormBody = z.infer<typeof CheckoutFormBody>;

export function parseCheckoutForm(body: unknown): CheckoutFormBody {
  return CheckoutFormBody.parse(body && typeof body === 'object' ? body : {});
}
