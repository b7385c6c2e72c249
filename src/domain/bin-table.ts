// Issuing country of a card from its leading digits (BIN/IIN), for the payment record, the receipt
// and the back office. Pure and offline: the table (src/domain/data/bin-ranges.ts) ships with the
// project because no maintained offline BIN data package is available to us on npm.
//
// Source and limits: the table is curated by hand from public knowledge — the sandbox and scheme
// test cards, the sandbox country cards (400000 + ISO 3166-1 numeric code), the published ranges of
// domestic card schemes (Mir, Elo, Verve, Dankort, Bancontact, …) and scheme-level fallbacks for
// JCB and UnionPay. It does NOT know the issuers of ordinary Visa, Mastercard or Amex cards (their
// BINs are licensed data, reassigned over time): for those the country is unknown and simply not
// shown. A production deployment should replace the table with its acquirer's BIN file (same row
// format), e.g. built by a script from the acquirer's monthly BIN range export.
//
// Lookup: the longest matching prefix wins (8-digit BINs, then 6, then scheme prefixes), so a
// specific row can refine a broad one. The full number is only read, never kept.
import { BIN_ROWS, type BinRow } from './data/bin-ranges.ts';

export interface BinInfo {
  /** ISO 3166-1 alpha-2, upper case. */
  country: string;
  issuer?: string;
}

interface Range {
  from: number;
  to: number;
  info: BinInfo;
}

export interface BinTable {
  /** The issuing country (and issuer) of a card number (digits; spaces are ignored), if known. */
  lookup(number: string): BinInfo | undefined;
  readonly size: number;
}

const COUNTRY = /^[A-Z]{2}$/;

/** Builds a table; throws on a malformed row so a bad edit fails at start-up and in tests. */
export function createBinTable(rows: readonly BinRow[]): BinTable {
  // Ranges grouped by prefix length, longest first.
  const byLength = new Map<number, Range[]>();
  for (const [spec, country, issuer] of rows) {
    const m = /^(\d{1,11})(?:-(\d{1,11}))?$/.exec(spec);
    const from = m?.[1];
    const to = m?.[2] ?? from;
    if (!m || !from || !to || from.length !== to.length || Number(from) > Number(to) || !COUNTRY.test(country)) {
      throw new Error(`bad BIN row: ${JSON.stringify([spec, country, issuer])}`);
    }
    const list = byLength.get(from.length) ?? [];
    list.push({ from: Number(from), to: Number(to), info: issuer ? { country, issuer } : { country } });
    byLength.set(from.length, list);
  }
  const lengths = [...byLength.keys()].sort((a, b) => b - a);
  return {
    size: rows.length,
    lookup(number: string): BinInfo | undefined {
      const digits = number.replace(/[\s-]/g, '');
      if (!/^\d{6,19}$/.test(digits)) return undefined;
      for (const len of lengths) {
        if (digits.length < len) continue;
        const head = Number(digits.slice(0, len));
        const hit = byLength.get(len)!.find((r) => head >= r.from && head <= r.to);
        if (hit) return { ...hit.info };
      }
      return undefined;
    },
  };
}

/** The table shipped with paymail. */
export const BIN_TABLE: BinTable = createBinTable(BIN_ROWS);

export function issuingCountry(number: string): string | undefined {
  return BIN_TABLE.lookup(number)?.country;
}
