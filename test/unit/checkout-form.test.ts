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

// A first view's fields come as markup rendered once per locale (checkout.routes.ts,
// firstViewFields): the page must be the one rendered from the fields themselves.
describe('checkout form: the kept first-view fields', () => {
  for (const lc of PAGE_LOCALES) {
    for (const needEmail of [true, false]) {
      it(`${lc}, ${needEmail ? 'with' : 'without'} the email field: the same page as rendered from the fields`, () => {
        const fields = formFields(views, lc, { needEmail, values: {}, problems: [] });
        const brandLabel = views.t(lc, 'form.brandDetected');
        const data = { locale: lc, title: 'Pay', summary: { merchantName: 'M', amountText: '€ 1' }, problems: [], brandLabel, csrf: 'c', csrfField: '_csrf' };
        const fromFields = views.render('checkout', { ...data, fields });
        const kept = views.render('checkout', { ...data, fieldsHtml: views.fragment('card-fields', { locale: lc, fields, brandLabel }) });
        assert.equal(kept, fromFields);
        assert.equal(fromFields.match(/<input id="/g)?.length, needEmail ? 5 : 4);
      });
    }
  }
});
