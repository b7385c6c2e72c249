// Merchant websites (Monetico's "Aller"/"Retour"): a sealed form POST to /pay/sealed becomes an
// order through the order service, and a paid or cancelled order's page sends the buyer back to the
// merchant with a sealed result. The seal (src/domain/seal.ts) is the authentication: checked in
// constant time against the merchant's seal key (and the previous one during its 24 hours), then
// the fields, the time window and the nonce. A refusal creates nothing.
import { z } from 'zod';
import { AppError, type FieldProblem } from '../domain/errors.ts';
import { isCurrency } from '../domain/money.ts';
import { computeSeal, sealMatches } from '../domain/seal.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { SUPPORTED_LOCALES } from './merchant.service.ts';
import { type OrderService } from './order.service.ts';
import { type Repositories } from '../db/repositories.ts';

/** A request's ts may differ from paymail's clock by this much. */
export const SEAL_WINDOW_SEC = 15 * 60;
/** Nonces are kept well past the ts window (a ts 15 minutes ahead stays acceptable for 30 minutes). */
export const NONCE_KEEP_MS = 60 * 60_000;
/** The parameters added to success_url / cancel_url (and sealed), besides `seal`. */
export const RETURNED_PARAMS = ['reference', 'status', 'amount', 'currency', 'ts'] as const;
export type ReturnStatus = 'paid' | 'cancelled' | 'expired';

// Verified against when the merchant is unknown, so the answer and its timing are a bad seal's.
const UNKNOWN_MERCHANT_KEY = 'seal_unknown-merchant';

const returnUrl = z
  .url({ protocol: /^https?$/, message: 'expected an http(s) URL' })
  .max(2000, 'at most 2000 characters')
  .refine(
    (u) => !URL.canParse(u) || !['seal', ...RETURNED_PARAMS].some((name) => new URL(u).searchParams.has(name)),
    `its query may not hold ${['seal', ...RETURNED_PARAMS].join(', ')}: paymail adds them`,
  );
const printable = /^[^\p{Cc}]*$/u;

/** Every field of POST /pay/sealed; unknown fields are refused (a misspelt name would go unnoticed). */
export const SealedRequestFields = z.strictObject({
  merchant: z.string().max(64),
  reference: z.string().trim().min(1, 'required').max(100, 'at most 100 characters').regex(printable, 'no control characters'),
  amount: z.string().regex(/^[1-9]\d{0,11}$/, 'expected a whole number of minor units greater than 0 (e.g. 12990 for 129.90)').transform(Number),
  currency: z.string().refine(isCurrency, 'expected an ISO 4217 currency code in capitals, such as EUR'),
  description: z.string().trim().min(1, 'required').max(500, 'at most 500 characters').regex(printable, 'no control characters'),
  email: z.union([z.literal(''), z.email('expected an e-mail address').max(254)]).optional(),
  lang: z.union([z.literal(''), z.enum(SUPPORTED_LOCALES, { message: `expected one of ${SUPPORTED_LOCALES.join(', ')}` })]).optional(),
  success_url: returnUrl,
  cancel_url: returnUrl,
  ts: z.string().regex(/^\d{1,12}$/, 'expected unix seconds').transform(Number),
  nonce: z.string().regex(/^[\x21-\x7e]{8,128}$/, 'expected 8 to 128 printable ASCII characters, unique per request'),
  seal: z.string(),
});

export interface SealedRequestDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  orders: OrderService;
  now?: () => Date;
}

export interface SealedResult {
  order: OrderDoc;
  /** The pay page (the order's pay-link). */
  link: string;
  created: boolean;
}

const refused = (code: string, httpStatus: number, message: string, problems?: FieldProblem[]) =>
  new AppError(code, message, { httpStatus, ...(problems ? { details: { problems } } : {}) });

/** The form as posted, each field once and a string; anything else is an invalid request. */
function flatFields(body: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  const problems: FieldProblem[] = [];
  for (const [name, value] of Object.entries(body && typeof body === 'object' ? body : {})) {
    if (typeof value === 'string') fields[name] = value;
    else problems.push({ field: name, code: 'FIELD_REPEATED', message: 'given more than once' });
  }
  if (problems.length) throw refused('SEALED_REQUEST_INVALID', 400, problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
  return fields;
}

export function createSealedRequestService(deps: SealedRequestDeps) {
  const now = deps.now ?? (() => new Date());

  /** The keys a request may be sealed with now: the current one, and the previous one in its grace period. */
  function keysOf(merchant: MerchantDoc, at: Date): string[] {
    const keys = merchant.sealKey ? [merchant.sealKey] : [];
    if (merchant.previousSealKey && merchant.previousSealKeyUntil && at < new Date(merchant.previousSealKeyUntil)) keys.push(merchant.previousSealKey);
    return keys;
  }

  /** Checks a sealed request and creates (or finds, for an open reference) its order. */
  async function accept(body: unknown): Promise<SealedResult> {
    const fields = flatFields(body);
    const at = now();
    const id = fields['merchant'];
    const merchant = id && id.length <= 64 ? await deps.repos.merchants.findById(id) : null;
    const keys = merchant ? keysOf(merchant, at) : [];
    if (!sealMatches(keys.length ? keys : [UNKNOWN_MERCHANT_KEY], fields) || !merchant || keys.length === 0) {
      throw refused('SEAL_INVALID', 403, 'the seal does not match the fields and the merchant');
    }
    const parsed = SealedRequestFields.safeParse(fields);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => ({
        field: i.path.length ? i.path.join('.') : i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys?.join(', ') ?? 'input' : 'input',
        code: 'FIELD_INVALID',
        message: i.code === 'unrecognized_keys' ? 'unknown field' : i.message,
      }));
      throw refused('SEALED_REQUEST_INVALID', 400, problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
    }
    const f = parsed.data;
    if (Math.abs(at.getTime() / 1000 - f.ts) > SEAL_WINDOW_SEC) {
      throw refused('SEAL_STALE', 400, `ts is more than ${SEAL_WINDOW_SEC / 60} minutes away from paymail's clock`);
    }
    if (await deps.repos.merchants.isSuspended(merchant._id)) throw refused('MERCHANT_SUSPENDED', 403, 'this merchant cannot take payments at the moment');
    if (!(await deps.repos.limits.recordNonce(merchant._id, f.nonce, at))) throw refused('SEAL_REPLAYED', 403, 'this nonce was used before');
    const r = await deps.orders.create(
      merchant,
      {
        amountMinor: f.amount,
        currency: f.currency,
        reference: f.reference,
        description: f.description,
        customerEmail: f.email || undefined,
        locale: f.lang || undefined,
        returnUrls: { success: f.success_url, cancel: f.cancel_url },
      },
      // One order per nonce; an open order with the same reference is found by the order service.
      { key: `sealed:${f.nonce}` },
      { payLinkMail: 'none' },
    );
    return { order: r.order, link: r.link, created: r.created };
  }

  /**
   * Where the buyer goes back to: success_url when paid, else cancel_url, with the result and its
   * seal (current key). Undefined for orders that did not come from a sealed request.
   */
  function returnLink(order: Pick<OrderDoc, 'reference' | 'amountMinor' | 'currency' | 'returnUrls'>, merchant: Pick<MerchantDoc, 'sealKey'>, status: ReturnStatus): string | undefined {
    const target = status === 'paid' ? order.returnUrls?.success : order.returnUrls?.cancel;
    if (!target || !merchant.sealKey) return undefined;
    const returned: Record<(typeof RETURNED_PARAMS)[number], string> = {
      reference: order.reference,
      status,
      amount: String(order.amountMinor),
      currency: order.currency,
      ts: String(Math.floor(now().getTime() / 1000)),
    };
    const url = new URL(target);
    for (const name of RETURNED_PARAMS) url.searchParams.set(name, returned[name]);
    url.searchParams.set('seal', computeSeal(merchant.sealKey, returned));
    return url.toString();
  }

  /** Forgets nonces long past the ts window (FerretDB has no TTL index). */
  const sweep = () => deps.repos.limits.pruneNonces(new Date(now().getTime() - NONCE_KEEP_MS));

  return { accept, returnLink, sweep };
}
export type SealedRequestService = ReturnType<typeof createSealedRequestService>;
