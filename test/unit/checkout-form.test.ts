// The card form's expiry field: its placeholder shows the same format as its label, in every
// language ("Scadenza (MM/AA)" with "MM/AA", not "MM/YY").
import assert from 'node:assert/strict';
import path from 'node:path';
import { formFields } from '../../src/http/checkout/checkout.view-model.ts';
import { langLinks, langPrefix } from '../../src/http/lang-nav.ts';
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
  const languageName = (lc: string) => views.t(lc, 'languageName');
  const hrefs = (query: string) => langLinks(PAGE_LOCALES, languageName, langPrefix('/pay/p1', query), 'it').map((l) => l.href);

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
    const links = langLinks(PAGE_LOCALES, languageName, langPrefix('/', ''), 'fr');
    assert.deepEqual(links.filter((l) => l.current).map((l) => l.code), ['fr']);
    assert.equal(links.find((l) => l.code === 'it')!.name, views.t('it', 'languageName'));
  });
});

// The switch's markup is kept per locale with a marker where the query goes (src/http/lang-nav.ts):
// it must be what rendering the links every time gives, whatever the query holds.
describe('language switch: the kept markup', () => {
  const languageName = (lc: string) => views.t(lc, 'languageName');
  const rendered = (path: string, query: string, current: string) =>
    views.fragment('lang-nav', { locale: current, langLinks: langLinks(PAGE_LOCALES, languageName, langPrefix(path, query), current) });
  const queries = ['', 'e=1765000000&a=12990&s=ab%2Fc+d', 'lang=fr&e=1', `x="><script>alert('1')</script>&y=a\`b=c`, 'q=%00&r=\u00e9t\u00e9', 'a=1&&b=2&lang'];

  for (const lc of [...PAGE_LOCALES, 'pt']) {
    it(`${lc}: the same markup as the links rendered each time, for every query (twice: kept, then reused)`, () => {
      for (let round = 0; round < 2; round++) {
        for (const q of queries) assert.equal(views.langNav('/pay/p1', q, lc), rendered('/pay/p1', q, lc), JSON.stringify(q));
      }
    });
  }

  it('escapes the query once per link and marks the current locale', () => {
    const nav = views.langNav('/pay/p1', 'a="1"&b=<2>', 'de');
    assert.equal(nav.match(/<a href="\/pay\/p1\?a&#x3D;&quot;1&quot;&amp;b&#x3D;&lt;2&gt;&amp;lang&#x3D;(\w\w)"/g)?.length, PAGE_LOCALES.length);
    assert.doesNotMatch(nav, /\u0000|<2>/);
    assert.equal(nav.match(/aria-current="page"/g)?.length, 1);
    assert.match(nav, /lang="de" aria-current="page">Deutsch</);
  });

  it('the page carries it once, in the header; no switch when the page gives none', () => {
    const page = (langNav: string) => views.render('not-found', { locale: 'it', title: 'x', langNav });
    const html = page(views.langNav('/pay/p1', 'e=1', 'it'));
    assert.equal(html.match(/<nav class="lang"/g)?.length, 1);
    assert.match(html, /<\/p>\n  <nav class="lang"[^]*<\/nav>\n<\/header>/);
    assert.doesNotMatch(page(''), /<nav/);
    assert.match(page(''), /<\/p>\n<\/header>/);
  });
});
