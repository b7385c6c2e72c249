// Code blocks of README.md, for tests that run the merchant-side examples exactly as published.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** The first ```lang block of the README that contains `marker`. */
export function readmeSnippet(lang: string, marker: string): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const code = [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!).find((c) => c.includes(marker));
  assert.ok(code, `README has a ${lang} snippet with ${marker}`);
  return code;
}
