// No raw translation key may reach a page or a mail: every key of every locale file exists in all
// five locales, and every kind of back-office timeline entry has its words.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { createBackofficeViews } from '../../src/http/backoffice/backoffice.views.ts';
import { timeline } from '../../src/http/backoffice/backoffice.view-model.ts';
import { MAIL_TEMPLATES } from '../../src/mail/renderer.ts';
import { PAGE_LOCALES } from '../../src/http/views.ts';

const TEMPLATES = path.resolve(import.meta.dirname, '../../templates');
const LOCALES_DIR = path.join(TEMPLATES, 'locales');

function keys(obj: unknown, prefix = ''): string[] {
  if (!obj || typeof obj !== 'object') return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}
/** Dotted key → text. */
function strings(obj: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (typeof obj === 'string') out[prefix] = obj;
  else if (obj && typeof obj === 'object') for (const [k, v] of Object.entries(obj)) strings(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}
const placeholders = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort().join(' ');
const read = (lc: string, file: string) => JSON.parse(readFileSync(path.join(LOCALES_DIR, lc, file), 'utf8')) as unknown;
const files = [...new Set(PAGE_LOCALES.flatMap((lc) => readdirSync(path.join(LOCALES_DIR, lc))))].filter((f) => f.endsWith('.json'));

describe('locale files', () => {
  for (const file of files) {
    it(`${file}: every key exists in all five locales`, () => {
      const all = new Set(PAGE_LOCALES.flatMap((lc) => (existsSync(path.join(LOCALES_DIR, lc, file)) ? keys(read(lc, file)) : [])));
      for (const lc of PAGE_LOCALES) {
        assert.ok(existsSync(path.join(LOCALES_DIR, lc, file)), `${lc}/${file} is missing`);
        const have = new Set(keys(read(lc, file)));
        assert.deepEqual([...all].filter((k) => !have.has(k)), [], `${lc}/${file} lacks these keys`);
      }
    });

    it(`${file}: every translation keeps the English {placeholders}`, () => {
      const english = strings(read('en', file));
      for (const lc of PAGE_LOCALES) {
        const own = strings(read(lc, file));
        const differ = Object.keys(english).filter((k) => k in own && placeholders(own[k]!) !== placeholders(english[k]!));
        assert.deepEqual(differ, [], `${lc}/${file}: placeholders differ from English`);
      }
    });
  }

  it('every kind of timeline entry renders words, not a key, in every locale', () => {
    const views = createBackofficeViews(TEMPLATES);
    const at = new Date('2031-02-10T09:00:00Z');
    const order = {
      _id: 'ord_1', sourceKey: 'msg:1', createdAt: at, source: { subject: 'Booking' },
      attempts: (['approved', 'declined', 'error', 'challenge', 'lost-race'] as const).map((outcome) => ({ at, outcome, declineCode: outcome === 'declined' ? 'INSUFFICIENT_FUNDS' : undefined, authCode: 'A1' })),
      payment: { paidAt: at, receiptNumber: 'R-1' }, cancelledAt: at, expiredAt: at,
    };
    const mails = MAIL_TEMPLATES.flatMap((template) => ['sent', 'pending', 'dead'].map((status) => ({ template, to: ['a@b.example'], status, createdAt: at })));
    for (const lc of PAGE_LOCALES) {
      const entries = timeline(views, order as never, mails, lc, 'Europe/Rome', [{ at, amountMinor: 100, currency: 'EUR', by: 'x@y.example' }]);
      const raw = entries.flatMap((e) => [e.text, e.detail]).filter((s) => /\b(timeline|decline|status)\.[\w.-]+/.test(s));
      assert.deepEqual(raw, [], `${lc}: untranslated keys`);
    }
  });
});
