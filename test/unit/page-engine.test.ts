// The page engine writes each locale's fixed strings into its templates and compiles every page
// with the layout around it (src/http/page-engine.ts). Its pages must be exactly what the
// straightforward way gives: the page rendered on its own, then the layout with it as {{body}},
// each {{t}} answered at render time.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { createPageEngine } from '../../src/http/page-engine.ts';
import { createPageStrings, PAGE_LOCALES, type Translate } from '../../src/http/page-strings.ts';

const TEMPLATES = path.resolve(import.meta.dirname, '../../templates');

/** The reference: plain Handlebars, page then layout, a `t` helper called at each {{t}}. */
function referenceEngine(pagesDir: string, partialPrefix: string, t: Translate) {
  const hbs = Handlebars.create();
  hbs.registerHelper('t', (key: unknown, options: Handlebars.HelperOptions) =>
    t((options.data?.root as { locale?: string }).locale ?? 'en', String(key), options.hash as Record<string, unknown>),
  );
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  const partials = path.join(pagesDir, 'partials');
  for (const f of readdirSync(partials).filter((n) => n.endsWith('.hbs'))) {
    hbs.registerPartial(partialPrefix + path.basename(f, '.hbs'), readFileSync(path.join(partials, f), 'utf8'));
  }
  const compile = (f: string) => hbs.compile(readFileSync(path.join(pagesDir, f), 'utf8'), { preventIndent: true });
  const layout = compile('layout.hbs');
  return (page: string, data: Record<string, unknown>) => layout({ ...data, body: new hbs.SafeString(compile(`${page}.hbs`)(data)) });
}

/** Data that takes most branches of most pages (`full`), or few of them. */
function pageData(locale: string, full: boolean): { locale: string; [k: string]: unknown } {
  return {
    locale,
    title: 'Title <with> "quotes" & more',
    langNav: full ? `  <nav class="lang"><a href="/pay/x?s=1&amp;lang=${locale}">${locale}</a></nav>\n` : '',
    brand: full ? { themePath: '/brand/m.css', logo: { path: '/brand/m.png', width: 120, height: 40 } } : undefined,
    summary: { merchantName: 'Hôtel <b>&</b>', amountText: '€ 129,90', reference: 'R-1', description: 'Two nights', expiresIso: '2026-12-08T10:00:00.000Z', expiresText: '8 Dec' },
    fields: [{ name: 'number', label: 'Card', type: 'text', hint: 'digits', error: full ? 'wrong' : undefined, half: false }],
    problems: full ? [{ field: 'number', message: 'wrong' }] : [],
    refusal: full ? 'refused' : undefined,
    plan: full ? { rows: [{ seq: 1, amountText: '€ 10', dueText: 'today' }] } : undefined,
    vars: { merchant: 'Hôtel', reference: 'R-1' },
    receipt: { merchantName: 'Hôtel', amountText: '€ 1', reference: 'R-1' },
    csrf: 'token',
    csrfField: '_csrf',
    back: '/back',
    development: full,
    gone: full,
    removed: !full,
    user: { email: 'desk@example.com' },
    orders: full ? [{ reference: 'R-1' }] : [],
  };
}

describe('page engine', () => {
  const sets = [
    { dir: path.join(TEMPLATES, 'pages'), prefix: '', namespaces: ['checkout'] },
    { dir: path.join(TEMPLATES, 'pages', 'backoffice'), prefix: 'bo-', namespaces: ['checkout', 'backoffice'] },
  ];
  for (const set of sets) {
    const { t } = createPageStrings({ localesDir: path.join(TEMPLATES, 'locales'), namespaces: set.namespaces });
    const engine = createPageEngine({ pagesDir: set.dir, partialPrefix: set.prefix, t });
    const reference = referenceEngine(set.dir, set.prefix, t);
    const pages = readdirSync(set.dir).filter((f) => f.endsWith('.hbs') && f !== 'layout.hbs').map((f) => path.basename(f, '.hbs'));

    // An unknown locale is not one of the folded sets: its {{t}} fall back to English at render time.
    for (const locale of [...PAGE_LOCALES, 'pt']) {
      it(`${path.relative(TEMPLATES, set.dir)}, ${locale}: every page is the reference page, byte for byte`, () => {
        assert.ok(pages.length >= 5);
        for (const page of pages) {
          for (const full of [true, false]) {
            const data = pageData(locale, full);
            assert.equal(engine.render(page, data), reference(page, data), `${page} (${full ? 'full' : 'sparse'} data)`);
          }
        }
      });
    }
  }

  it('writes the fixed strings in escaped, as the helper answer would be', () => {
    const dir = path.join(TEMPLATES, 'pages');
    const t: Translate = (locale, key) => (key === 'site.name' ? `<${locale}> & "co"` : key);
    const html = createPageEngine({ pagesDir: dir, t }).render('not-found', { locale: 'fr', title: 'x' });
    assert.match(html, /&lt;fr&gt; &amp; &quot;co&quot;/);
    assert.doesNotMatch(html, /<fr>/);
  });

  it('names an unknown page', () => {
    const { t } = createPageStrings({ localesDir: path.join(TEMPLATES, 'locales'), namespaces: ['checkout'] });
    assert.throws(() => createPageEngine({ pagesDir: path.join(TEMPLATES, 'pages'), t }).render('nope', { locale: 'en' }), /no page template "nope"/);
  });
});
