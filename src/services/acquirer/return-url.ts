// Where an acquirer's own 3-D Secure page sends the buyer back: under the pay-link, with its signed
// query, so the return opens the order exactly as the pay-link does. Stripe appends
// `payment_intent=<id>` (the challenge id) and a few parameters of its own, which the route drops.
export const ACQUIRER_RETURN_LEAF = '3ds-return';
/** What the acquirer appends to the return URL; `payment_intent` names the challenge. */
export const ACQUIRER_RETURN_PARAMS = ['payment_intent', 'payment_intent_client_secret', 'redirect_status', 'source_redirect_slug', 'source_type'] as const;

/** `…/pay/<publicId>?<signed query>` → `…/pay/<publicId>/3ds-return?<signed query>`. */
export function acquirerReturnUrl(payLink: string): string {
  const u = new URL(payLink);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/${ACQUIRER_RETURN_LEAF}`;
  return u.toString();
}
