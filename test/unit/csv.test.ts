// The one CSV writer (src/domain/csv.ts, csv-stringify): RFC 4180 quoting, CRLF records, the
// spreadsheet formula guard, and records that csv-parse reads back to the same cells.
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { csvCell, csvLine, CsvNumber } from '../../src/domain/csv.ts';

describe('CSV writer', () => {
  const cells: Array<[string, unknown, string]> = [
    ['plain text', 'plain', 'plain'],
    ['a comma', 'a, b', '"a, b"'],
    ['quotes', 'say "hi"', '"say ""hi"""'],
    ['a line feed', 'two\nlines', '"two\nlines"'],
    ['a CRLF', 'two\r\nlines', '"two\r\nlines"'],
    ['a semicolon', 'a;b', '"a;b"'],
    ['leading and trailing blanks', ' padded ', '" padded "'],
    ['=formula', '=1+1', "'=1+1"],
    ['+formula', '+39 055', "'+39 055"],
    ['-formula', '-5', "'-5"],
    ['@formula', '@SUM(A1)', "'@SUM(A1)"],
    ['a leading tab', '\tcmd', `"'\tcmd"`],
    ['a formula with quotes', '=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['undefined', undefined, ''],
    ['null', null, ''],
    ['a date', new Date('2026-01-02T03:04:05Z'), '2026-01-02T03:04:05.000Z'],
    ['a negative number given as text', new CsvNumber('-12.50'), '-12.50'],
    ['a number', 42, '42'],
  ];
  for (const [name, input, out] of cells) {
    it(`writes ${name}`, () => assert.equal(csvCell(input), out));
  }

  it('ends each record with CRLF and reads back with csv-parse (formula-guarded cells keep their apostrophe)', () => {
    const row = ['ord_1', 'a, b', 'say "hi"', 'two\nlines', 'a;b', ' padded ', '=1+1', new CsvNumber('-3.00'), undefined];
    const text = csvLine(row) + csvLine(['x', 'y']);
    assert.ok(text.endsWith('y\r\n'));
    const parsed = parse(text, { relax_column_count: true }) as string[][];
    assert.deepEqual(parsed, [
      ['ord_1', 'a, b', 'say "hi"', 'two\nlines', 'a;b', ' padded ', "'=1+1", '-3.00', ''],
      ['x', 'y'],
    ]);
  });
});
