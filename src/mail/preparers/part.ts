// The line a mail about one part of an order paid in parts (issue 13 part 1) shows: on a pay-link
// "Deposit of 300.00 € (total 1,000.00 €)", on a receipt "Deposit received: 300.00 € of 1,000.00 €"
// or "Balance received — the order is paid in full". Strings: the `part` section of mail.json; the
// renderer fills the chosen key with these placeholder values.
import { type z } from 'zod';
import { formatMoney } from '../../domain/money.ts';
import { type PartData } from '../contracts.ts';
import { type Ctx } from '../format.ts';

type Part = NonNullable<z.output<typeof PartData>>;

const kindOf = (p: Part): 'Deposit' | 'Balance' | 'Instalment' =>
  p.kind === 'deposit' ? 'Deposit' : p.kind === 'balance' ? 'Balance' : 'Instalment';

/** Placeholder values and the `part` key of the line; undefined for an order paid at once. */
export function partLine(part: Part | null | undefined, amountMinor: number, currency: string, ctx: Ctx, mode: 'link' | 'paid') {
  if (!part) return undefined;
  const vars = {
    partAmount: formatMoney(amountMinor, currency, ctx.intl),
    partTotal: formatMoney(part.totalMinor, currency, ctx.intl),
    partSeq: part.seq,
    partOf: part.of,
  };
  const kind = kindOf(part);
  const key = mode === 'link' ? `link${kind}` : kind === 'Instalment' && part.seq >= part.of ? 'paidLastInstalment' : `paid${kind}`;
  return { vars, key };
}
