// The one permission table of the back office. Every route names one permission; the router
// refuses (403) a role not listed here before the handler runs. Roles as in the SIPS back
// offices: consultation (viewer), operations (operator), accounting (accountant), admin.
import { type Role } from '../../domain/merchant.ts';

export const PERMISSIONS = {
  /** Orders list and detail. */
  'orders.read': ['viewer', 'operator', 'accountant', 'admin'],
  'orders.cancel': ['operator', 'admin'],
  'orders.resend': ['operator', 'admin'],
  'orders.extend': ['operator', 'admin'],
  'orders.create': ['operator', 'admin'],
  'orders.export': ['accountant', 'admin'],
  'orders.refund': ['operator', 'admin'],
  /** Taking a card over the phone (mail/telephone order). */
  'orders.moto': ['operator', 'admin'],
  /** Charging a customer's saved card without the customer (merchant-initiated, issue 12 part 3). */
  'orders.charge': ['operator', 'admin'],
  /** Merchant settings, webhook secret rotation, the webhook log and its replay. */
  settings: ['admin'],
  users: ['admin'],
  /** The server API's keys: list, create (shown once), revoke. */
  apiKeys: ['admin'],
  /** One's own account: password change, log-out. */
  account: ['viewer', 'operator', 'accountant', 'admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}
