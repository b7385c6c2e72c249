// The words of the server-rendered pages (checkout, proof, start, back office): one lookup over
// templates/locales/<lc>/<namespace>.json, nested keys flattened to dotted ones ("form.pay"),
// English as the fallback per key, then the key itself; `{name}` placeholders filled from vars
// (an unknown placeholder stays as written). Mail strings are not read here: the mail renderer
// deep-merges whole sections and fills them precompiled, with plural forms (src/mail/format.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const PAGE_LOCALES = ['en', 'it', 'fr', 'de', 'es'] as const;
export type PageLocale = (typeof PAGE_LOCALES)[number];
export const DEFAULT_LOCALE: PageLocale = 'en';

type Dictionary = Record<string, string>;
export type Translate = (locale: string, key: string, vars?: Record<string, unknown>) => string;

export interface PageStrings {
  /** Translates `key` with `{name}` placeholders; falls back to English, then to the key itself. */
  t: Translate;
}

/** The first candidate that is a supported page locale ("it-IT" → "it"), else English. */
export function resolvePageLocale(...candidates: unknown[]): PageLocale {
  for (const c of candidates) {
    if (typeof c !== 'string') continue;
    const lc = c.trim().toLowerCase().slice(0, 2);
    if ((PAGE_LOCALES as readonly string[]).includes(lc)) return lc as PageLocale;
  }
  return DEFAULT_LOCALE;
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
  // Most strings have no placeholder (and the `t` helper always passes its hash): no regex then.
  if (!vars || !text.includes('{')) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name] ?? '') : m));
}

/** Reads the namespaces' files for each page locale once; later namespaces override earlier ones. */
export function createPageStrings(opts: { localesDir: string; namespaces: readonly string[] }): PageStrings {
  const dictionaries = new Map<string, Dictionary>();
  for (const lc of PAGE_LOCALES) {
    const dict: Dictionary = {};
    for (const ns of opts.namespaces) {
      const file = path.join(opts.localesDir, lc, `${ns}.json`);
      if (existsSync(file)) flatten(JSON.parse(readFileSync(file, 'utf8')), '', dict);
    }
    dictionaries.set(lc, dict);
  }
  const english = dictionaries.get(DEFAULT_LOCALE) ?? {};
  return {
    t(locale, key, vars) {
      const text = dictionaries.get(locale)?.[key] ?? english[key] ?? key;
      return interpolate(text, vars);
    },
  };
}
