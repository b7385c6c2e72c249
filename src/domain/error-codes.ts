// The registry of stable error codes (Stripe's `code`, RFC 9457's `type`): each code's HTTP status
// and, for the codes a mail door can meet, its SMTP reply. AppError takes its defaults from here and
// both edges map through it: the HTTP error handler answers `httpStatus`, the SMTP doors answer the
// reply (src/inbound/smtp-common.ts smtpReplyOf). A code missing here is a 500 / 451 "try again".

export interface SmtpReply {
  /** Basic reply code (4xx: the sender retries; 5xx: it gives up). */
  code: number;
  /** Enhanced status code (RFC 3463) and text. */
  text: string;
}

export interface ErrorCodeSpec {
  httpStatus: number;
  smtp?: SmtpReply;
}

const TRY_LATER = 'try again later';

export const ERROR_CODES: Readonly<Record<string, ErrorCodeSpec>> = Object.freeze({
  // Mail intake and the SMTP doors.
  INTAKE_CLOSING: { httpStatus: 503, smtp: { code: 421, text: `4.3.2 shutting down, ${TRY_LATER}` } },
  INTAKE_STORE_UNAVAILABLE: { httpStatus: 503, smtp: { code: 451, text: `4.3.0 the message could not be stored, ${TRY_LATER}` } },
  PASSWORD_CHECK_BUSY: { httpStatus: 503, smtp: { code: 454, text: `4.7.0 temporary authentication failure, ${TRY_LATER}` } },
  // Log-in and users.
  AUTH_INVALID_CREDENTIALS: { httpStatus: 401 },
  AUTH_LOCKED: { httpStatus: 429 },
  FORBIDDEN: { httpStatus: 403 },
  NOT_FOUND: { httpStatus: 404 },
  PASSWORD_CURRENT_WRONG: { httpStatus: 422 },
  PASSWORD_MISMATCH: { httpStatus: 422 },
  LANGUAGE_INVALID: { httpStatus: 422 },
  // Branding (settings): every problem in details.problems.
  BRANDING_INVALID: { httpStatus: 422 },
  BRANDING_UPLOAD_INVALID: { httpStatus: 400 },
  PASSWORD_TOO_LONG: { httpStatus: 422 },
  PASSWORD_TOO_SHORT: { httpStatus: 422 },
  ROLE_INVALID: { httpStatus: 422 },
  USER_EMAIL_INVALID: { httpStatus: 422 },
  /** A corrected customer address that is none (back office, issue 13 part 8). */
  CUSTOMER_EMAIL_INVALID: { httpStatus: 422 },
  USER_EXISTS: { httpStatus: 409 },
  USER_LAST_ADMIN: { httpStatus: 409 },
  USER_NOT_FOUND: { httpStatus: 404 },
  USER_SELF: { httpStatus: 409 },
  // Merchants and their settings.
  MERCHANT_EMAIL_TAKEN: { httpStatus: 409 },
  MERCHANT_INVALID: { httpStatus: 400 },
  MERCHANT_NOT_FOUND: { httpStatus: 404 },
  SUSPENSION_REASON_INVALID: { httpStatus: 422 },
  WEBHOOK_HOST_UNRESOLVED: { httpStatus: 422 },
  WEBHOOK_IN_FLIGHT: { httpStatus: 409 },
  WEBHOOK_NOT_FOUND: { httpStatus: 404 },
  WEBHOOK_URL_INVALID: { httpStatus: 422 },
  // Per-merchant acquirers (paymail merchant set-acquirer, the settings) and Stripe's webhooks.
  ACQUIRER_INVALID: { httpStatus: 422 },
  ACQUIRER_SECRET_KEY_REQUIRED: { httpStatus: 422 },
  ACQUIRER_SECRET_KEY_INVALID: { httpStatus: 422 },
  ACQUIRER_WEBHOOK_SECRET_INVALID: { httpStatus: 422 },
  ACQUIRER_API_BASE_INVALID: { httpStatus: 422 },
  ACQUIRER_NOT_CONFIGURED: { httpStatus: 409 },
  STRIPE_WEBHOOK_INVALID: { httpStatus: 400 },
  // Orders, refunds, receipts.
  DATE_INVALID: { httpStatus: 422 },
  ORDER_EXPIRY_PAST: { httpStatus: 422 },
  ORDER_NOT_CANCELLABLE: { httpStatus: 409 },
  ORDER_NOT_EXTENDABLE: { httpStatus: 409 },
  ORDER_NOT_FOUND: { httpStatus: 404 },
  ORDER_NOT_PAYABLE: { httpStatus: 409 },
  // A way back from an expired link (issue 13 part 4).
  ORDER_NOT_RENEWABLE: { httpStatus: 409 },
  RENEWAL_EMAIL_REQUIRED: { httpStatus: 422 },
  ORDER_REFERENCE_TAKEN: { httpStatus: 409 },
  // Asking for the next part of an order paid in parts (issue 13 part 1) that is not partly paid:
  // no plan, the deposit unpaid, or paid, cancelled, expired.
  ORDER_NOT_PARTLY_PAID: { httpStatus: 409 },
  // Payment plans (issue 13 part 1): the field problems of src/domain/payment-plan.ts, met in order
  // mails, batches, the back-office form and the API (there inside a 422 VALIDATION_FAILED).
  DEPOSIT_INVALID: { httpStatus: 422 },
  DEPOSIT_CURRENCY_MISMATCH: { httpStatus: 422 },
  DEPOSIT_NOT_LESS_THAN_TOTAL: { httpStatus: 422 },
  BALANCE_DUE_INVALID: { httpStatus: 422 },
  BALANCE_DUE_PAST: { httpStatus: 422 },
  BALANCE_WITHOUT_DEPOSIT: { httpStatus: 422 },
  INSTALMENTS_INVALID: { httpStatus: 422 },
  INSTALMENTS_COUNT: { httpStatus: 422 },
  INSTALMENTS_TOO_SMALL: { httpStatus: 422 },
  PLAN_CONFLICT: { httpStatus: 422 },
  RECEIPT_NOT_FOUND: { httpStatus: 404 },
  REFUND_AMOUNT_INVALID: { httpStatus: 422 },
  REFUND_NOT_PAID: { httpStatus: 409 },
  REFUND_REFUSED: { httpStatus: 409 },
  REFUND_UNSUPPORTED: { httpStatus: 409 },
  // Saved cards (issue 12 part 3): merchant-initiated charges and the removal link.
  CUSTOMER_NOT_FOUND: { httpStatus: 404 },
  SAVED_CARD_NOT_FOUND: { httpStatus: 409 },
  CHARGE_INVALID: { httpStatus: 422 },
  CHARGE_CONFLICT: { httpStatus: 409 },
  /** The acquirer declined a merchant-initiated charge: `declineCode` says why. */
  PAYMENT_DECLINED: { httpStatus: 402 },
  // The server API (/api/v1): keys, requests, idempotency, rate limit.
  API_KEY_INVALID: { httpStatus: 401 },
  API_KEY_NOT_FOUND: { httpStatus: 404 },
  API_KEY_READ_ONLY: { httpStatus: 403 },
  API_RATE_LIMITED: { httpStatus: 429 },
  API_ROUTE_NOT_FOUND: { httpStatus: 404 },
  API_METHOD_NOT_ALLOWED: { httpStatus: 405 },
  BODY_INVALID_JSON: { httpStatus: 400 },
  BODY_TOO_LARGE: { httpStatus: 413 },
  UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415 },
  VALIDATION_FAILED: { httpStatus: 422 },
  CURSOR_INVALID: { httpStatus: 400 },
  IDEMPOTENCY_KEY_INVALID: { httpStatus: 400 },
  IDEMPOTENCY_KEY_REUSED: { httpStatus: 409 },
  IDEMPOTENCY_IN_PROGRESS: { httpStatus: 409 },
  ORDER_REFERENCE_EXISTS: { httpStatus: 409 },
  MERCHANT_SUSPENDED: { httpStatus: 403 },
  REFUND_EXCEEDS_PAID: { httpStatus: 409 },
  REFUND_BUSY: { httpStatus: 409 },
  // Orders paid in parts (issue 13 part 1): a refund goes back on one part's payment; cancelling a
  // partly paid order says whether what was paid is refunded.
  REFUND_PART_REQUIRED: { httpStatus: 409 },
  REFUND_PART_INVALID: { httpStatus: 422 },
  CANCEL_REFUND_CHOICE_REQUIRED: { httpStatus: 422 },
});

export function errorCodeSpec(code: string): ErrorCodeSpec | undefined {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code] : undefined;
}
