// The one CSV writer (csv-stringify): RFC 4180 quoting, CRLF records, and the spreadsheet formula
// guard — text a spreadsheet would run as a formula (= + - @, a leading tab or CR) gets a leading
// apostrophe: names and descriptions come from e-mails. Used by the back-office export and the
// daily recap's attachment.
import { stringify, type Options } from 'csv-stringify/sync';

/** A numeric cell given as text ("-12.50"): written as is, never formula-guarded. */
export class CsvNumber {
  constructor(readonly text: string) {}
}

const OPTIONS: Options = {
  record_delimiter: 'windows',
  // csv-stringify only quotes line breaks matching record_delimiter unless told otherwise.
  quote_record_delimiter: true,
  escape_formulas: true,
  // Also quoted: ';' (the separator of spreadsheets in several locales) and text with leading or
  // trailing blanks (so they survive a reader that trims).
  quoted_match: [';', /^\s|\s$/],
  cast: {
    date: (d) => d.toISOString(),
    object: (v) => (v instanceof CsvNumber ? { value: v.text, escape_formulas: false } : JSON.stringify(v)),
  },
};

/** One CSV record, CRLF-terminated. null and undefined are empty cells; Dates are ISO 8601 UTC. */
export const csvLine = (cells: readonly unknown[]): string => stringify([cells as unknown[]], OPTIONS);

/** One cell as it appears in a record (quoted and guarded as needed). */
export const csvCell = (value: unknown): string => csvLine([value]).slice(0, -2);
