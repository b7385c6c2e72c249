// The language switch at the top of the checkout-side pages: a link to the same page in each page
// locale, the current one marked. The links' query is the page's own (pay-link parameters, as they
// came), without its `lang`, then lang=<code>.
//
// The switch's markup is the same for every page of a locale except for that query, so it is
// rendered once per current locale (partials/lang-nav.hbs) with a marker where the query goes, and
// each page fills in its query, escaped once. Rendering the five links on every page was about half
// of the checkout page's template time (bench P2).
import Handlebars from 'handlebars';
import { type PageLocale } from './page-strings.ts';

export interface LangLink {
  code: string;
  name: string;
  href: string;
  current: boolean;
}

/** The name of one `name=value` pair of a query string, decoded as a form would be. */
function paramName(pair: string): string {
  const raw = pair.split('=', 1)[0]!;
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * What every language link starts with: `path?`, the query as it came without its `lang` (however
 * encoded), then `lang=`. The other parameters keep their bytes (the pay-link signature is over
 * their values), and the query is gone through once for all the links.
 */
export function langPrefix(path: string, querystring: string): string {
  const kept = querystring
    .split('&')
    .filter((pair) => pair !== '' && paramName(pair) !== 'lang')
    .join('&');
  return `${path}?${kept ? `${kept}&` : ''}lang=`;
}

/** The links of the switch, each locale named in its own language. */
export function langLinks(locales: readonly string[], languageName: (code: string) => string, prefix: string, current: string): LangLink[] {
  return locales.map((code) => ({ code, name: languageName(code), href: prefix + code, current: code === current }));
}

export interface LangNavDeps {
  locales: readonly PageLocale[];
  t(locale: string, key: string): string;
  /** Renders partials/lang-nav.hbs (data: locale, langLinks). */
  fragment(partial: string, data: { locale: string; langLinks: LangLink[] }): string;
}

// Stands for the prefix in the kept markup: a character no locale string or code contains, and
// one that HTML escaping leaves as it is.
const MARK = '\u0000';

/** The switch's markup for a page at `path` with this query, in and marking `current`. */
export function createLangNav(deps: LangNavDeps): (path: string, querystring: string, current: string) => string {
  const languageName = (code: string) => deps.t(code, 'languageName');
  const render = (prefix: string, current: string) => deps.fragment('lang-nav', { locale: current, langLinks: langLinks(deps.locales, languageName, prefix, current) });
  // Per page locale: the markup cut where the prefix goes, one cut per link (null: the template
  // put the marker elsewhere, so that locale's switch is rendered each time).
  const kept = new Map<string, string[] | null>();
  function partsFor(current: string): string[] | null {
    let parts = kept.get(current);
    if (parts === undefined) {
      if (!(deps.locales as readonly string[]).includes(current)) return null;
      parts = render(MARK, current).split(MARK);
      if (parts.length !== deps.locales.length + 1) parts = null;
      kept.set(current, parts);
    }
    return parts;
  }
  return (path, querystring, current) => {
    const prefix = langPrefix(path, querystring);
    const parts = partsFor(current);
    return parts ? parts.join(Handlebars.Utils.escapeExpression(prefix)) : render(prefix, current);
  };
}
