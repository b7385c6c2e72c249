// Server-rendered pages: templates/pages/*.hbs through the shared page engine (page-engine.ts:
// a dedicated Handlebars instance, one layout, partials from pages/partials/, compiled once at
// start-up) with a `t` helper reading templates/locales/<lc>/<namespace>.json for the page's
// locale through the one page-string lookup (page-strings.ts).
import path from 'node:path';
import { createLangNav } from './lang-nav.ts';
import { createPageEngine } from './page-engine.ts';
import { createPageStrings, resolvePageLocale, PAGE_LOCALES, type PageLocale } from './page-strings.ts';

export { PAGE_LOCALES, DEFAULT_LOCALE, type PageLocale } from './page-strings.ts';

export interface ViewsOptions {
  templatesDir: string;
  /** Locale files read for each locale (templates/locales/<lc>/<ns>.json); later ones override. */
  namespaces?: string[];
}

export interface Views {
  /** The first candidate that is a supported locale (e.g. ?lang, then the order's), else English. */
  resolveLocale(...candidates: unknown[]): PageLocale;
  /** Translates `key` with `{name}` placeholders; falls back to English, then to the key itself. */
  t(locale: string, key: string, vars?: Record<string, unknown>): string;
  has(page: string): boolean;
  /** Renders a page inside the layout. `data.locale` selects the language; `data.title` the <title>. */
  render(page: string, data: { locale: string; title?: string; [k: string]: unknown }): string;
  /** Renders one partial of templates/pages/partials/ on its own (see PageEngine.fragment). */
  fragment(partial: string, data: { locale: string; [k: string]: unknown }): string;
  /**
   * The language switch of the page at `path` with this query (the layout's `langNav`): a link to
   * the page in each locale, `current` marked (src/http/lang-nav.ts).
   */
  langNav(path: string, querystring: string, current: string): string;
}

/**
 * The languages of an Accept-Language header, most preferred first ("it-IT,it;q=0.9,en;q=0.5" →
 * ["it-IT", "it", "en"]); q=0 entries are dropped. Bounded, as it is client input.
 */
export function acceptedLanguages(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .slice(0, 500)
    .split(',')
    .slice(0, 20)
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find(Boolean);
      return { tag: tag.trim(), q: q === undefined ? 1 : Number(q), i };
    })
    .filter((l) => /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(l.tag) && l.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i)
    .map((l) => l.tag);
}

export function createViews(opts: ViewsOptions): Views {
  const { t } = createPageStrings({ localesDir: path.join(opts.templatesDir, 'locales'), namespaces: opts.namespaces ?? ['checkout'] });
  const engine = createPageEngine({ pagesDir: path.join(opts.templatesDir, 'pages'), t });
  return {
    resolveLocale: resolvePageLocale,
    t,
    has: engine.has,
    render: engine.render,
    fragment: engine.fragment,
    langNav: createLangNav({ locales: PAGE_LOCALES, t, fragment: engine.fragment }),
  };
}
