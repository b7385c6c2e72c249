// Batches: a CSV or JSON attachment with one order per row/object. Column names (CSV header) and
// keys (JSON) are the labels of order mails, in any of the five languages. Each row is read with
// the same field reader as a mail, so it accepts and refuses exactly the same values. Rows are
// numbered from 1, the header not counted; a problem in one row never holds back another.
import { parse as parseCsv } from 'csv-parse/sync';
import { type FieldProblem } from './errors.ts';
import { fieldForLabel, readOrderFields, type FieldContext, type FieldValue, type OrderDraft, type OrderField } from './order-mail.ts';

export const MAX_BATCH_ROWS = 500;

export interface BatchAttachment {
  filename?: string | undefined;
  contentType: string;
  content: Uint8Array;
}

export type BatchFormat = 'csv' | 'json';

const CSV_TYPES = new Set(['text/csv', 'application/csv', 'text/comma-separated-values', 'text/x-csv', 'application/x-csv']);
const JSON_TYPES = new Set(['application/json', 'text/json', 'application/x-json']);

/** CSV or JSON by content type or by file name (Excel on Windows sends CSV as vnd.ms-excel). */
export function batchFormat(a: Pick<BatchAttachment, 'filename' | 'contentType'>): BatchFormat | undefined {
  const type = a.contentType.toLowerCase().split(';')[0]!.trim();
  const name = (a.filename ?? '').toLowerCase();
  if (CSV_TYPES.has(type) || name.endsWith('.csv')) return 'csv';
  if (JSON_TYPES.has(type) || name.endsWith('.json')) return 'json';
  return undefined;
}

export interface BatchRow {
  row: number;
  draft?: OrderDraft;
  problems: FieldProblem[];
  notices: FieldProblem[];
}

export type BatchResult =
  | { ok: true; format: BatchFormat; rows: BatchRow[]; notices: FieldProblem[] }
  | { ok: false; problem: FieldProblem };

const refuse = (code: string, value: string, message: string): BatchResult => ({
  ok: false,
  problem: { field: 'attachment', code, value, message },
});

/** UTF-8 (a BOM is dropped); bytes that are not UTF-8 are read as Windows-1252, as Excel writes. */
function decode(content: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    text = new TextDecoder('windows-1252').decode(content);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** The delimiter used most in the header line, outside quotes: `;` (European Excel), `,` or tab. */
export function detectDelimiter(text: string): ',' | ';' | '\t' {
  const counts = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (let i = 0; i < text.length && i < 10_000; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) break;
    else if (!quoted && c in counts) counts[c as keyof typeof counts]++;
  }
  if (counts[';'] > counts[','] && counts[';'] >= counts['\t']) return ';';
  if (counts['\t'] > counts[','] && counts['\t'] > counts[';']) return '\t';
  return ',';
}

/** Maps column names to fields; unknown names become a notice, a field named twice refuses the batch. */
function mapColumns(names: string[]): { fields: Array<OrderField | undefined>; notices: FieldProblem[] } | BatchResult {
  const fields = names.map((n) => fieldForLabel(n));
  const notices: FieldProblem[] = [];
  const seen = new Map<OrderField, string>();
  for (let i = 0; i < names.length; i++) {
    const f = fields[i];
    const name = names[i]!;
    if (!f) {
      if (name.trim() !== '') {
        notices.push({ field: 'attachment', code: 'BATCH_COLUMN_IGNORED', value: name, message: 'not a known column name; its values were ignored' });
      }
      continue;
    }
    const other = seen.get(f);
    if (other !== undefined) return refuse('BATCH_COLUMN_DUPLICATE', name, `"${name}" and "${other}" name the same field; keep one of them`);
    seen.set(f, name);
  }
  if (!seen.has('amount')) return refuse('BATCH_AMOUNT_COLUMN_MISSING', names.join(', '), 'a column "Amount" (or Importo, Montant, Betrag, Importe) is required');
  return { fields, notices };
}

function tooMany(n: number): BatchResult {
  return refuse('BATCH_TOO_MANY_ROWS', String(n), `at most ${MAX_BATCH_ROWS} orders per batch; this one has ${n}: split it into several mails`);
}

function readRows(records: Array<Map<OrderField, string>>, ctx: FieldContext): BatchRow[] {
  return records.map((values, i) => {
    const row = i + 1;
    const found = new Map<OrderField, FieldValue>();
    for (const [f, v] of values) found.set(f, { value: v.trim(), row });
    const r = readOrderFields(found, ctx);
    return { row, problems: r.problems, notices: r.notices, ...(r.draft ? { draft: r.draft } : {}) };
  });
}

function parseCsvBatch(text: string, ctx: FieldContext): BatchResult {
  let records: string[][];
  try {
    records = parseCsv(text, {
      delimiter: detectDelimiter(text),
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_empty_values: true,
      // Bounds a hostile file: no field of an order is anywhere near this long.
      max_record_size: 64 * 1024,
    }) as string[][];
  } catch (e) {
    const err = e as { message?: string; lines?: number };
    return refuse('BATCH_CSV_INVALID', err.lines ? `line ${err.lines}` : '', `the CSV could not be read: ${err.message ?? 'invalid'}`);
  }
  const [header, ...data] = records;
  if (!header) return refuse('BATCH_EMPTY', '', 'the file holds no orders');
  if (data.length > MAX_BATCH_ROWS) return tooMany(data.length);
  const mapped = mapColumns(header.map((h) => h.trim()));
  if ('ok' in mapped) return mapped;
  if (data.length === 0) return refuse('BATCH_EMPTY', '', 'the file has a header row but no orders');
  const rows = data.map((cells) => {
    const values = new Map<OrderField, string>();
    cells.forEach((cell, i) => {
      const f = mapped.fields[i];
      if (f) values.set(f, cell);
    });
    return values;
  });
  return { ok: true, format: 'csv', rows: readRows(rows, ctx), notices: mapped.notices };
}

function parseJsonBatch(text: string, ctx: FieldContext): BatchResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return refuse('BATCH_JSON_INVALID', '', `the JSON could not be read: ${(e as Error).message}`);
  }
  // An array of orders, or { "orders": [...] } as some exports wrap it.
  const list = Array.isArray(data) ? data : (data as { orders?: unknown } | null)?.orders;
  if (!Array.isArray(list)) return refuse('BATCH_JSON_INVALID', '', 'expected an array of objects, one per order');
  if (list.length > MAX_BATCH_ROWS) return tooMany(list.length);
  if (list.length === 0) return refuse('BATCH_EMPTY', '', 'the array holds no orders');
  // Objects may each use another language: keys are mapped per object, unknown ones noted once.
  const unknown = new Set<string>();
  for (const o of list) {
    if (o && typeof o === 'object' && !Array.isArray(o)) for (const k of Object.keys(o)) if (!fieldForLabel(k)) unknown.add(k);
  }
  const notices: FieldProblem[] = [...unknown].map((k) => ({
    field: 'attachment',
    code: 'BATCH_COLUMN_IGNORED',
    value: k,
    message: 'not a known column name; its values were ignored',
  }));
  const rows: BatchRow[] = [];
  const valid: Array<Map<OrderField, string>> = [];
  list.forEach((o, i) => {
    const row = i + 1;
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      rows[i] = { row, problems: [{ field: 'order', code: 'BATCH_ROW_INVALID', row, value: JSON.stringify(o)?.slice(0, 80) ?? '', message: 'expected an object such as {"amount": "129.90", "reference": "A-1"}' }], notices: [] };
      return;
    }
    const values = new Map<OrderField, string>();
    const problems: FieldProblem[] = [];
    const named = new Map<OrderField, string>();
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      const f = fieldForLabel(k);
      if (!f || v === null || v === undefined) continue;
      const other = named.get(f);
      if (other !== undefined) {
        problems.push({ field: f, code: 'ORDER_FIELD_DUPLICATE', row, value: k, message: `"${k}" and "${other}" name the same field; keep one of them` });
        continue;
      }
      named.set(f, k);
      // Numbers are taken as written by JSON.stringify (129.9 → "129.9"): never through a float sum.
      if (typeof v === 'string' || typeof v === 'number') values.set(f, String(v));
      else problems.push({ field: f, code: 'BATCH_VALUE_INVALID', row, value: JSON.stringify(v).slice(0, 80), message: 'expected text or a number' });
    }
    if (problems.length > 0) rows[i] = { row, problems, notices: [] };
    else {
      valid[i] = values;
    }
  });
  const read = readRows(
    list.map((_, i) => valid[i] ?? new Map()),
    ctx,
  );
  return { ok: true, format: 'json', rows: read.map((r, i) => rows[i] ?? r), notices };
}

/** Reads a batch attachment; `ok: false` refuses the whole file (with the reason), rows otherwise. */
export function parseBatch(a: BatchAttachment, ctx: FieldContext): BatchResult {
  const format = batchFormat(a);
  const name = a.filename ?? format ?? 'attachment';
  if (!format) return refuse('BATCH_FORMAT_UNKNOWN', name, 'expected a CSV or JSON file');
  const text = decode(a.content);
  const r = format === 'csv' ? parseCsvBatch(text, ctx) : parseJsonBatch(text, ctx);
  if (!r.ok && !r.problem.value) r.problem.value = name;
  return r;
}
