// Intl formatters cost far more to build than to use (tens of µs against ~1 µs; benches P2, P3,
// P5): one bounded cache for every formatter paymail builds, keyed by locale and options. A
// formatter that cannot be built (an unknown zone) throws and is not cached.
const MAX_ENTRIES = 2_000;
const cache = new Map<string, Intl.DateTimeFormat | Intl.NumberFormat>();

function cached<T extends Intl.DateTimeFormat | Intl.NumberFormat>(key: string, build: () => T): T {
  let f = cache.get(key) as T | undefined;
  if (f === undefined) {
    f = build();
    // Bounded: locales × zones × styles seen; hostile input cannot grow it without end.
    if (cache.size < MAX_ENTRIES) cache.set(key, f);
  }
  return f;
}

export function dateTimeFormat(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  return cached(`d|${locale}|${JSON.stringify(options)}`, () => new Intl.DateTimeFormat(locale, options));
}

export function numberFormat(locale: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  return cached(`n|${locale}|${JSON.stringify(options)}`, () => new Intl.NumberFormat(locale, options));
}

const regionNames = new Map<string, Intl.DisplayNames>();

/** "Italy" / "Italia" for "IT" (any case); the code itself when Intl does not know it. */
export function countryName(code: string, locale: string): string {
  try {
    let names = regionNames.get(locale);
    if (!names) {
      names = new Intl.DisplayNames([locale], { type: 'region' });
      if (regionNames.size < MAX_ENTRIES) regionNames.set(locale, names);
    }
    return names.of(code.toUpperCase()) ?? code;
  } catch {
    return code;
  }
}
