// Server-rendered pages: templates/pages/*.hbs compiled once at start-up with a dedicated
// Handlebars instance (HTML escaping on), one layout, partials from pages/partials/, and a `t`
// helper reading templates/locales/<lc>/<namespace>.json for the page's locale.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';

export const PAGE_LOCALES = ['en', 'it', 'fr', 'de', 'es'] as const;
export type PageLocale = (typeof PAGE_LOCALES)[number];
export const DEFAULT_LOCALE: PageLocale = 'en';

type Dictionary = Record<string, string>;

export interface ViewsOptions {
  templatesDir: string;
  /** Locale files read for each locale (templates/locales/<lc>/<ns>.json); later ones override. */
  namespaces?: string[];
}

export interface Views {
  readonly locales: readonly PageLocale[];
  /** The first candidate that is a supported locale (e.g. ?lang, then the order's), else English. */
  resolveLocale(...candidates: unknown[]): PageLocale;
  /** Translates `key` with `{name}` placeholders; falls back to English, then to the key itself. */
  t(locale: string, key: string, vars?: Record<string, unknown>): string;
  has(page: string): boolean;
  /** Renders a page inside the layout. `data.locale` selects the language; `data.title` the <title>. */
  render(page: string, data: { locale: string; title?: string; [k: string]: unknown }): string;
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

/** Flattens nested JSON into dotted keys ("form.number"). */
function flatten(obj: unknown, prefix: string, out: Dictionary): Dictionary {
  if (typeof obj === 'string') out[prefix] = obj;
  else if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

function interpolate(text: string, vars: Record<string, unknown> | undefined): string {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name] ?? '') : m));
}

export function createViews(opts: ViewsOptions): Views {
  const pagesDir = path.join(opts.templatesDir, 'pages');
  const localesDir = path.join(opts.templatesDir, 'locales');
  const namespaces = opts.namespaces ?? ['checkout'];

  const dictionaries = new Map<string, Dictionary>();
  for (const lc of PAGE_LOCALES) {
    const dict: Dictionary = {};
    for (const ns of namespaces) {
      const file = path.join(localesDir, lc, `${ns}.json`);
      if (existsSync(file)) flatten(JSON.parse(readFileSync(file, 'utf8')), '', dict);
    }
    dictionaries.set(lc, dict);
  }
  const english = dictionaries.get(DEFAULT_LOCALE) ?? {};

  function t(locale: string, key: string, vars?: Record<string, unknown>): string {
    const text = dictionaries.get(locale)?.[key] ?? english[key] ?? key;
    return interpolate(text, vars);
  }

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
      hbs.registerPartial(path.basename(f, '.hbs'), readFileSync(path.join(partialsDir, f), 'utf8'));
    }
  }
  const compile = (file: string) => hbs.compile(readFileSync(file, 'utf8'), { strict: false, preventIndent: true });
  const layout = compile(path.join(pagesDir, 'layout.hbs'));
  const pages = new Map<string, HandlebarsTemplateDelegate>();
  for (const f of readdirSync(pagesDir).filter((n) => n.endsWith('.hbs') && n !== 'layout.hbs')) {
    pages.set(path.basename(f, '.hbs'), compile(path.join(pagesDir, f)));
  }

  return {
    locales: PAGE_LOCALES,
    resolveLocale(...candidates: unknown[]): PageLocale {
      for (const c of candidates) {
        if (typeof c !== 'string') continue;
        const lc = c.trim().toLowerCase().slice(0, 2);
        if ((PAGE_LOCALES as readonly string[]).includes(lc)) return lc as PageLocale;
      }
      return DEFAULT_LOCALE;
    },
    t,
    has: (page) => pages.has(page),
    render(page, data) {
      const tpl = pages.get(page);
      if (!tpl) throw new Error(`no page template "${page}"`);
      const body = tpl(data);
      return layout({ ...data, body: new hbs.SafeString(body) });
    },
  };
}
