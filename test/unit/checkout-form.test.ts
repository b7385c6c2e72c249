// The card form's expiry field: its placeholder shows the same format as its label, in every
// language ("Scadenza (MM/AA)" with "MM/AA", not "MM/YY").
import assert from 'node:assert/strict';
import path from 'node:path';
import { formFields } from '../../src/http/checkout/checkout.view-model.ts';
import { createViews, PAGE_LOCALES } from '../../src/http/views.ts';

const views = createViews({ templatesDir: path.resolve(import.meta.dirname, '../../templates') });

describe('checkout form fields', () => {
  for (const lc of PAGE_LOCALES) {
    it(`${lc}: the expiry placeholder is the format named in the label`, () => {
      const expiry = formFields(views, lc, { needEmail: false, values: {}, problems: [] }).find((f) => f.name === 'expiry')!;
      const inLabel = /\(([^)]+)\)/.exec(views.t(lc, 'form.expiry'))?.[1];
      assert.ok(inLabel, 'the label names the format');
      assert.equal(expiry.placeholder, inLabel);
    });
  }
});
