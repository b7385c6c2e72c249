// Back-office pages: templates/pages/backoffice/*.hbs with their own layout and partials (named
// "bo-<file>"), through the same page engine as the checkout views (page-engine.ts); strings come
// from templates/locales/<lc>/backoffice.json through the one page-string lookup (page-strings.ts,
// English fallback per key).
import path from 'node:path';
import { createPageEngine } from '../page-engine.ts';
import { createPageStrings } from '../page-strings.ts';

export interface BackofficeViews {
  t(locale: string, key: string, vars?: Record<string, unknown>): string;
  render(page: string, data: { locale: string; title: string; [k: string]: unknown }): string;
}

export function createBackofficeViews(templatesDir: string): BackofficeViews {
  const { t } = createPageStrings({ localesDir: path.join(templatesDir, 'locales'), namespaces: ['backoffice'] });
  const engine = createPageEngine({ pagesDir: path.join(templatesDir, 'pages', 'backoffice'), partialPrefix: 'bo-', t, label: 'back-office page' });
  return { t, render: engine.render };
}
