// What a merchant asks for when creating an order (by mail, form or batch), before it is stored.
// Same shape as OrderDraft in services/order.service.ts, kept here so pure parsers need no service.

export interface OrderDraft {
  amountMinor: number;
  currency: string;
  reference?: string | undefined;
  description?: string | undefined;
  customerEmail?: string | undefined;
  customerName?: string | undefined;
  locale?: string | undefined;
  delivery?: 'merchant' | 'customer' | undefined;
  expiresAt?: Date | undefined;
}
