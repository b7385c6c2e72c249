// Formatting helpers of the mail renderer: locale resolution, time zones, Intl date/country
// formatting, `{name}` placeholder filling (compiled once per locale section), plural forms and
// one-line subjects.
import { countryName, dateTimeFormat } from '../domain/intl-cache.ts';
import { isTimeZone } from '../domain/time-zone.ts';

export const MAIL_LOCALES = ['en', 'it', 'fr', 'de', 'es'] as const;
export const DEFAULT_TIME_ZONE = 'Europe/Rome';

export type Strings = Record<string, unknown>;

export interface Ctx {
  /** BCP 47 tag used with Intl ("it", "de-CH"). */
  intl: string;
  timeZone: string;
}

// Intl formatters are costly to build (bench P3): zones and formatters come from the shared caches.
export function validTimeZone(tz: string | null | undefined): string {
  return tz && isTimeZone(tz) ? tz : DEFAULT_TIME_ZONE;
}

export function formatDateTime(date: Date, intl: string, timeZone: string): string {
  // Explicit parts rather than dateStyle so the zone name can be shown: readers may live elsewhere.
  return dateTimeFormat(intl, { year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone, timeZoneName: 'short' }).format(date);
}

export { countryName };

/** Replaces `{name}` placeholders; the result is still escaped by Handlebars when shown in HTML. */
export function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k] ?? ''));
}

/**
 * A locale's string section split once at its `{name}` placeholders: [key, literal, name, literal,
 * name, …, literal] per string. Filling it per mail is then concatenation, with no regex scan of
 * every string (bench P3). Same result as fill() on each string-valued key, in key order.
 */
export type CompiledSection = Array<[key: string, parts: string[]]>;

export function compileSection(strings: unknown): CompiledSection {
  const out: CompiledSection = [];
  if (strings && typeof strings === 'object') {
    for (const [k, v] of Object.entries(strings)) if (typeof v === 'string') out.push([k, v.split(/\{(\w+)\}/)]);
  }
  return out;
}

export function fillAll(section: CompiledSection, vars: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, parts] of section) {
    let s = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) s += String(vars[parts[i]!] ?? '') + parts[i + 1]!;
    out[k] = s;
  }
  return out;
}

export function deepMerge(base: Strings, over: Strings): Strings {
  const out: Strings = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object'
        ? deepMerge(b as Strings, v as Strings)
        : v;
  }
  return out;
}

/** One-line subject: the merchant's name or original subject must not break the header. */
export function oneLine(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ').replace(/\s{2,}/g, ' ').trim();
}

// Reply prefixes of the common mail clients (Re, Aw, R, Rif, Réf, RV, with counters such as Re[2]
// or Re^2 and French spacing "Réf. :"): our reply's own prefix replaces them, so subjects do not
// stack up "Re: Re:". Forward prefixes (Fwd, I, WG, TR) say something else and are kept.
const REPLY_PREFIXES = /^(?:\s*(?:re|aw|r|rif|r[ée]f\.?|rv|sv|antw)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:)+\s*/i;

/** The subject a reply quotes: one line, without the reply prefixes already on it. */
export function replySubject(s: string): string {
  return oneLine(s).replace(REPLY_PREFIXES, '');
}

const PLURAL_RULES = new Map<string, Intl.PluralRules>();
/**
 * A string with plural forms (`{ "one": …, "other": … }`, Intl.PluralRules categories) picked
 * for `n` in the language `intl`; a plain string is used as it is.
 */
export function pluralForm(entry: unknown, n: number, intl: string): string {
  if (typeof entry === 'string') return entry;
  if (!entry || typeof entry !== 'object') return '';
  let rules = PLURAL_RULES.get(intl);
  if (!rules) PLURAL_RULES.set(intl, (rules = new Intl.PluralRules(intl)));
  const forms = entry as Record<string, unknown>;
  const chosen = forms[rules.select(n)] ?? forms.other;
  return typeof chosen === 'string' ? chosen : '';
}

// Locale tags seen, resolved once (Intl.getCanonicalLocales per mail showed in the P3 profile).
const RESOLVED_LOCALES = new Map<string, { lc: string; intl: string }>();

export function resolveLocale(locale: string): { lc: string; intl: string } {
  let r = RESOLVED_LOCALES.get(locale);
  if (!r) {
    r = resolveLocaleUncached(locale);
    if (RESOLVED_LOCALES.size < 1_000) RESOLVED_LOCALES.set(locale, r);
  }
  return r;
}

function resolveLocaleUncached(locale: string): { lc: string; intl: string } {
  const base = (locale || 'en').toLowerCase().split(/[-_]/)[0] ?? 'en';
  if (!(MAIL_LOCALES as readonly string[]).includes(base)) return { lc: 'en', intl: 'en' };
  try {
    const tag = Intl.getCanonicalLocales(locale.replace(/_/g, '-'))[0];
    return { lc: base, intl: tag ?? base };
  } catch {
    return { lc: base, intl: base };
  }
}
