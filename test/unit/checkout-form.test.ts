// The card form's expiry field: its placeholder shows the same format as its label, in every
// language ("Scadenza (MM/AA)" with "MM/AA", not "MM/YY").
import assert from 'node:assert/strict';
import path from 'node:path';
import { formFields, langLinks } from '../../src/http/checkout/checkout.view-model.ts';
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

describe('language links', () => {
  const hrefs = (query: string) => langLinks(views, '/pay/p1', query, 'it').map((l) => l.href);

  it('keep the query as it came and add lang= for each page locale', () => {
    assert.deepEqual(hrefs('e=1765000000&a=12990&s=ab%2Fc+d'), PAGE_LOCALES.map((lc) => `/pay/p1?e=1765000000&a=12990&s=ab%2Fc+d&lang=${lc}`));
    assert.deepEqual(hrefs(''), PAGE_LOCALES.map((lc) => `/pay/p1?lang=${lc}`));
  });

  it('drop the lang the query had, however it is written', () => {
    for (const q of ['lang=fr&e=1', 'e=1&lang=fr', 'e=1&lang=de&lang=fr', 'l%61ng=fr&e=1', 'e=1&lang', '&e=1&&lang=']) {
      assert.deepEqual(hrefs(q), PAGE_LOCALES.map((lc) => `/pay/p1?e=1&lang=${lc}`), q);
    }
    // A parameter that only looks like it stays.
    assert.equal(hrefs('language=fr&xlang=1&l%ZZng=2')[0], '/pay/p1?language=fr&xlang=1&l%ZZng=2&lang=en');
  });

  it('mark the current locale and name each in its own language', () => {
    const links = langLinks(views, '/', '', 'fr');
    assert.deepEqual(links.filter((l) => l.current).map((l) => l.code), ['fr']);
    assert.equal(links.find((l) => l.code === 'it')!.name, views.t('it', 'languageName'));
  });
});
