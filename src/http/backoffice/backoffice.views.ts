// Back-office pages: templates/pages/backoffice/*.hbs with their own layout and partials, compiled
// once at start-up by a dedicated Handlebars instance (HTML escaping on), the same approach as the
// checkout views. Strings come from templates/locales/<lc>/backoffice.json through createViews'
// `t` (English fallback per key), so the checkout's view code stays untouched.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { createViews } from '../views.ts';

export interface BackofficeViews {
  t(locale: string, key: string, vars?: Record<string, unknown>): string;
  render(page: string, data: { locale: string; title: string; [k: string]: unknown }): string;
}

export function createBackofficeViews(templatesDir: string): BackofficeViews {
  const i18n = createViews({ templatesDir, namespaces: ['backoffice'] });
  const dir = path.join(templatesDir, 'pages', 'backoffice');
  const hbs = Handlebars.create();
  hbs.registerHelper('t', function (this: unknown, key: unknown, options: Handlebars.HelperOptions) {
    const root = options.data?.root as { locale?: string } | undefined;
    return i18n.t(root?.locale ?? 'en', String(key), options.hash as Record<string, unknown>);
  });
  hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);

  const partials = path.join(dir, 'partials');
  if (existsSync(partials)) {
    for (const f of readdirSync(partials).filter((n) => n.endsWith('.hbs'))) {
      hbs.registerPartial(`bo-${path.basename(f, '.hbs')}`, readFileSync(path.join(partials, f), 'utf8'));
    }
  }
  const compile = (file: string) => hbs.compile(readFileSync(file, 'utf8'), { strict: false, preventIndent: true });
  const layout = compile(path.join(dir, 'layout.hbs'));
  const pages = new Map<string, HandlebarsTemplateDelegate>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.hbs') && n !== 'layout.hbs')) {
    pages.set(path.basename(f, '.hbs'), compile(path.join(dir, f)));
  }

  return {
    t: i18n.t,
    render(page, data) {
      const tpl = pages.get(page);
      if (!tpl) throw new Error(`no back-office page "${page}"`);
      return layout({ ...data, body: new hbs.SafeString(tpl(data)) });
    },
  };
}
