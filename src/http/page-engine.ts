// One engine for every server-rendered page set (checkout/proof/start pages, the back office): the
// `t` and `eq` helpers, the set's partials (optionally name-prefixed), one layout, every page of the
// directory (HTML escaping on). Each page is compiled as one template with the layout around it,
// and once per page locale with that locale's fixed strings (`{{t "key"}}` without arguments)
// already written in: rendering a page is one template call with no helper call for fixed words.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { DEFAULT_LOCALE, PAGE_LOCALES, type Translate } from './page-strings.ts';

export interface PageEngineOptions {
  /** Holds layout.hbs, the pages (*.hbs) and partials/*.hbs. */
  pagesDir: string;
  /** Prepended to each partial's file name ("bo-" → {{> bo-nav}}). */
  partialPrefix?: string;
  /** The page-string lookup behind the `t` helper. */
  t: Translate;
  /** Names the set in the error for an unknown page (`no <label> "x"`). */
  label?: string;
}

export interface PageEngine {
  has(page: string): boolean;
  /** Renders a page inside the layout. `data.locale` selects the language; `data.title` the <title>. */
  render(page: string, data: { locale: string; [k: string]: unknown }): string;
  /** Renders one partial on its own (its name with the set's prefix), e.g. to keep markup that does not change. */
  fragment(partial: string, data: { locale: string; [k: string]: unknown }): string;
}

type Program = hbs.AST.Program;
type Statement = hbs.AST.Statement;

// Only `t`, `eq` and the built-in block helpers exist: compiled as known, a `{{name}}` is a plain
// property read instead of a helper look-up first (an unknown helper is a start-up error).
const COMPILE_OPTIONS: CompileOptions = { strict: false, preventIndent: true, knownHelpers: { t: true, eq: true }, knownHelpersOnly: true };

/** `{{name}}`: a mustache of that one name. */
function isMustacheOf(s: Statement, name: string): s is hbs.AST.MustacheStatement {
  const path = (s as hbs.AST.MustacheStatement).path;
  return s.type === 'MustacheStatement' && path.type === 'PathExpression' && (path as hbs.AST.PathExpression).original === name;
}

/** The layout's statements with its `{{body}}` replaced by the page's (both parsed on their own). */
function withLayout(layout: Program, page: Program, layoutFile: string): Program {
  const at = layout.body.findIndex((s) => isMustacheOf(s, 'body'));
  if (at < 0) throw new Error(`${layoutFile} has no {{body}}`);
  return { ...layout, body: [...layout.body.slice(0, at), ...page.body, ...layout.body.slice(at + 1)] };
}

/** A `{{t "key"}}` (one string, no hash): the same in every render of a locale. */
function fixedKey(s: Statement): { key: string; escaped: boolean } | undefined {
  if (!isMustacheOf(s, 't')) return undefined;
  const [param] = s.params;
  if (s.params.length !== 1 || s.hash?.pairs.length || param?.type !== 'StringLiteral') return undefined;
  return { key: (param as hbs.AST.StringLiteral).value, escaped: s.escaped };
}

/**
 * A copy of `program` with each fixed `{{t "key"}}` replaced by its text in `locale`, escaped as
 * the helper's answer would be; blocks are folded inside, everything else is kept as it is.
 */
function foldFixedStrings(program: Program, locale: string, t: Translate): Program {
  const fold = (p: Program): Program => ({
    ...p,
    body: p.body.map((s): Statement => {
      const fixed = fixedKey(s);
      if (fixed) {
        const text = t(locale, fixed.key, {});
        const value = fixed.escaped ? Handlebars.Utils.escapeExpression(text) : text;
        // What Handlebars' parser makes of text (its typings call `original` strip flags; it is the text).
        const content = { type: 'ContentStatement', value, original: value, loc: s.loc };
        return content as unknown as hbs.AST.ContentStatement;
      }
      if (s.type === 'BlockStatement' || s.type === 'DecoratorBlock' || s.type === 'PartialBlockStatement') {
        const b = s as hbs.AST.BlockStatement;
        return { ...b, program: b.program && fold(b.program), inverse: b.inverse && fold(b.inverse) } as Statement;
      }
      return s;
    }),
  });
  return fold(program);
}

export function createPageEngine(opts: PageEngineOptions): PageEngine {
  const { pagesDir, t } = opts;
  const label = opts.label ?? 'page template';
  const read = (file: string) => Handlebars.parse(readFileSync(file, 'utf8'));

  const partialsDir = path.join(pagesDir, 'partials');
  const partials = new Map<string, Program>();
  if (existsSync(partialsDir)) {
    for (const f of readdirSync(partialsDir).filter((n) => n.endsWith('.hbs'))) {
      partials.set(`${opts.partialPrefix ?? ''}${path.basename(f, '.hbs')}`, read(path.join(partialsDir, f)));
    }
  }
  const layoutFile = path.join(pagesDir, 'layout.hbs');
  const layout = read(layoutFile);
  const pages = new Map<string, Program>();
  for (const f of readdirSync(pagesDir).filter((n) => n.endsWith('.hbs') && n !== 'layout.hbs')) {
    pages.set(path.basename(f, '.hbs'), withLayout(layout, read(path.join(pagesDir, f)), layoutFile));
  }

  /**
   * The page set for one locale: its own Handlebars instance, whose partials and pages have that
   * locale's fixed strings written in (`null`: a locale without its own strings, kept as written).
   * Handlebars compiles each template on its first render.
   */
  function compileSet(locale: string | null): { pages: Map<string, HandlebarsTemplateDelegate>; fragments: Map<string, HandlebarsTemplateDelegate> } {
    const hbs = Handlebars.create();
    // {{t "form.pay" amount=amountText}}: the result is a plain string, so Handlebars escapes it.
    hbs.registerHelper('t', function (this: unknown, key: unknown, options: Handlebars.HelperOptions) {
      const root = options.data?.root as { locale?: string } | undefined;
      return t(root?.locale ?? DEFAULT_LOCALE, String(key), options.hash as Record<string, unknown>);
    });
    hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    const prepare = (p: Program) => hbs.compile(locale ? foldFixedStrings(p, locale, t) : p, COMPILE_OPTIONS);
    const fragments = new Map([...partials].map(([name, p]) => [name, prepare(p)]));
    for (const [name, tpl] of fragments) hbs.registerPartial(name, tpl);
    return { pages: new Map([...pages].map(([name, p]) => [name, prepare(p)])), fragments };
  }
  const byLocale = new Map(PAGE_LOCALES.map((lc) => [lc as string, compileSet(lc)]));
  const asWritten = compileSet(null);
  const setFor = (locale: string | undefined) => byLocale.get(locale ?? DEFAULT_LOCALE) ?? asWritten;

  return {
    has: (page) => pages.has(page),
    render(page, data) {
      const tpl = setFor(data.locale).pages.get(page);
      if (!tpl) throw new Error(`no ${label} "${page}"`);
      return tpl(data);
    },
    fragment(partial, data) {
      const tpl = setFor(data.locale).fragments.get(partial);
      if (!tpl) throw new Error(`no partial "${partial}" in ${pagesDir}`);
      return tpl(data);
    },
  };
}
