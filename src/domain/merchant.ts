// Value sets of the merchant aggregate, shared by the storage schemas, the services and the back
// office (pure: no storage here).

/** Who receives a new order's pay-link: the merchant (to forward) or the customer directly. */
export const DELIVERY_MODES = ['merchant', 'customer'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

/** The acquirers a merchant can take payments with (src/services/acquirer/). */
export const ACQUIRER_NAMES = ['sandbox', 'stripe'] as const;
export type AcquirerName = (typeof ACQUIRER_NAMES)[number];

export const MERCHANT_STATUSES = ['active', 'suspended'] as const;
export type MerchantStatus = (typeof MERCHANT_STATUSES)[number];

/** Back-office roles (src/http/backoffice/permissions.ts says what each may do). */
export const ROLES = ['viewer', 'operator', 'accountant', 'admin'] as const;
export type Role = (typeof ROLES)[number];
