// One engine for every server-rendered page set (checkout/proof/start pages, the back office): a
// dedicated Handlebars instance (HTML escaping on) per set with the `t` and `eq` helpers, the
// set's partials (optionally name-prefixed), one layout, and every page of the directory
// parsed once at start-up (Handlebars compiles lazily, on a page's first render). Each page,
// the layout and the partials exist once more per supported locale with their static strings
// inlined (page-static-strings.ts: no helper call for `{{t "key"}}`); a page whose locale is not
// one of them renders through the helper, with the same output.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { DEFAULT_LOCALE, PAGE_LOCALES, type Translate } from './page-strings.ts';
import { compileParsedAsIs, inlineStaticStrings } from './page-static-strings.ts';

export interface PageEngineOptions {
  /** Holds layout.hbs, the pages (*.hbs) and partials/*.hbs. */
  pagesDir: string;
  /** Prepended to each partial's file name ("bo-" → {{> bo-nav}}). */
  partialPrefix?: string;
  /** The page-string lookup behind the `t` helper. */
  t: Translate;
  /** Names the set in the error for an unknown page (`no <label> "x"`). */
  label?: string;
  /** The locales compiled with their static strings inlined (default: every page locale); `[]` = helper only. */
  inlineLocales?: readonly string[];
}

export interface PageEngine {
  has(page: string): boolean;
  /** Renders a page inside the layout. `data.locale` selects the language; `data.title` the <title>. */
  render(page: string, data: { locale: string; [k: string]: unknown }): string;
}

// Only `t`, `eq` and the built-in block helpers exist: compiled as known, a `{{name}}` is a plain
// property read instead of a helper look-up first (an unknown helper is a start-up error).
const COMPILE_OPTIONS: CompileOptions = { strict: false, preventIndent: true, knownHelpers: { t: true, eq: true }, knownHelpersOnly: true };

interface PageSet {
  layout: HandlebarsTemplateDelegate;
  pages: Map<string, HandlebarsTemplateDelegate>;
}

export function createPageEngine(opts: PageEngineOptions): PageEngine {
  const { pagesDir, t } = opts;
  const label = opts.label ?? 'page template';
  const instance = () => {
    const hbs = Handlebars.create();
    // {{t "form.pay" amount=amountText}}: the result is a plain string, so Handlebars escapes it.
    hbs.registerHelper('t', function (this: unknown, key: unknown, options: Handlebars.HelperOptions) {
      const root = options.data?.root as { locale?: string } | undefined;
      return t(root?.locale ?? DEFAULT_LOCALE, String(key), options.hash as Record<string, unknown>);
    });
    hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    return hbs;
  };

  const read = (dir: string, skip?: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => n.endsWith('.hbs') && n !== skip)
          .map((f) => ({ name: path.basename(f, '.hbs'), source: readFileSync(path.join(dir, f), 'utf8') }))
      : [];
  const partials = read(path.join(pagesDir, 'partials')).map((p) => ({ ...p, name: `${opts.partialPrefix ?? ''}${p.name}` }));
  const layoutSource = readFileSync(path.join(pagesDir, 'layout.hbs'), 'utf8');
  const pageSources = read(pagesDir, 'layout.hbs');

  // The helper path: every locale, and the only one for a locale not in inlineLocales.
  const base = instance();
  for (const p of partials) base.registerPartial(p.name, p.source);
  const compile = (source: string) => base.compile(source, COMPILE_OPTIONS);
  const generic: PageSet = { layout: compile(layoutSource), pages: new Map(pageSources.map((p) => [p.name, compile(p.source)])) };

  // Per locale: the same trees with the static strings as text, in an instance of its own so that
  // {{> name}} finds the locale's partial under its usual name. Parsed on first use (once for all
  // locales) and compiled on a locale's first render, as Handlebars compiles a source lazily.
  const lazyParse = (source: string) => {
    let ast: hbs.AST.Program | undefined;
    return () => (ast ??= Handlebars.parse(source));
  };
  const layoutAst = lazyParse(layoutSource);
  const partialAsts = partials.map((p) => ({ name: p.name, ast: lazyParse(p.source) }));
  const pageAsts = pageSources.map((p) => ({ name: p.name, ast: lazyParse(p.source) }));
  const byLocale = new Map<string, PageSet>();
  for (const locale of opts.inlineLocales ?? PAGE_LOCALES) {
    const lc = instance();
    compileParsedAsIs(lc);
    const translate = (key: string, hash: Record<string, unknown>) => t(locale, key, hash);
    const compileLc = (ast: () => hbs.AST.Program): HandlebarsTemplateDelegate => {
      let tpl: HandlebarsTemplateDelegate | undefined;
      return (context, options) => (tpl ??= lc.compile(inlineStaticStrings(ast(), translate), COMPILE_OPTIONS))(context, options);
    };
    for (const p of partialAsts) lc.registerPartial(p.name, compileLc(p.ast));
    byLocale.set(locale, { layout: compileLc(layoutAst), pages: new Map(pageAsts.map((p) => [p.name, compileLc(p.ast)])) });
  }

  return {
    has: (page) => generic.pages.has(page),
    render(page, data) {
      const set = byLocale.get(data.locale) ?? generic;
      const tpl = set.pages.get(page);
      if (!tpl) throw new Error(`no ${label} "${page}"`);
      // Object.assign, not a spread: V8 spreads a large object into a literal on a slow path (~10 µs, bench P2).
      return set.layout(Object.assign({}, data, { body: new Handlebars.SafeString(tpl(data)) }));
    },
  };
}
