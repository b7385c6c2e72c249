// One engine for every server-rendered page set (checkout/proof/start pages, the back office): a
// dedicated Handlebars instance (HTML escaping on) per set with the `t` and `eq` helpers, the
// set's partials (optionally name-prefixed), one layout, and every page of the directory
// compiled once at start-up (Handlebars compiles lazily, on a page's first render).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { DEFAULT_LOCALE, type Translate } from './page-strings.ts';

export interface PageEngineOptions {
  /** Holds layout.hbs, the pages (*.hbs) and partials/*.hbs. */
  pagesDir: string;
  /** Prepended to each partial's file name ("bo-" → {{> bo-nav}}). */
  partialPrefix?: string;
  /** The page-string lookup behind the `t` helper. */
  t: Translate;
  /** Names the set in the error for an unknown page (`no <label> "x"`). */
  label?: string;
}

export interface PageEngine {
  has(page: string): boolean;
  /** Renders a page inside the layout. `data.locale` selects the language; `data.title` the <title>. */
  render(page: string, data: { locale: string; [k: string]: unknown }): string;
}

export function createPageEngine(opts: PageEngineOptions): PageEngine {
  const { pagesDir, t } = opts;
  const label = opts.label ?? 'page template';
  const hbs = Handlebars.create();
  // {{t "form.pay" amount=amountText}}: the result is a plain string, so Handlebars escapes it.
  hbs.registerHelper('t', function (this: unknown, key: unknown, options: Handlebars.HelperOptions) {
    const root = options.data?.root as { locale?: string } | undefined;
    return t(root?.locale ?? DEFAULT_LOCALE, String(key), options.hash as Record<string, unknown>);
  });
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);

  const partialsDir = path.join(pagesDir, 'partials');
  if (existsSync(partialsDir)) {
    for (const f of readdirSync(partialsDir).filter((n) => n.endsWith('.hbs'))) {
      hbs.registerPartial(`${opts.partialPrefix ?? ''}${path.basename(f, '.hbs')}`, readFileSync(path.join(partialsDir, f), 'utf8'));
    }
  }
  // Only `t`, `eq` and the built-in block helpers exist: compiled as known, a `{{name}}` is a plain
  // property read instead of a helper look-up first (an unknown helper is a start-up error).
  const compile = (file: string) =>
    hbs.compile(readFileSync(file, 'utf8'), { strict: false, preventIndent: true, knownHelpers: { t: true, eq: true }, knownHelpersOnly: true });
  const layout = compile(path.join(pagesDir, 'layout.hbs'));
  const pages = new Map<string, HandlebarsTemplateDelegate>();
  for (const f of readdirSync(pagesDir).filter((n) => n.endsWith('.hbs') && n !== 'layout.hbs')) {
    pages.set(path.basename(f, '.hbs'), compile(path.join(pagesDir, f)));
  }

  return {
    has: (page) => pages.has(page),
    render(page, data) {
      const tpl = pages.get(page);
      if (!tpl) throw new Error(`no ${label} "${page}"`);
      // Object.assign, not a spread: V8 spreads a large object into a literal on a slow path (~10 µs, bench P2).
      return layout(Object.assign({}, data, { body: new hbs.SafeString(tpl(data)) }));
    },
  };
}
