// The page engine's static strings inlined per locale (issue 11, P2; src/http/page-engine.ts,
// src/http/page-static-strings.ts): every page of each page set (checkout/proof/start pages, the
// back office), its layout and partials, rendered in every locale through the inlined templates
// and through the `t` helper alone must be the same bytes, for data built from the templates
// themselves (every branch taken, none taken, and seeded mixes); and on made-up templates, the
// cases the inlining must get right: escaping, a `{{` or `\` in a translation, whitespace control,
// raw output, literal and dynamic hash values, subexpressions, a block parameter named `t`,
// partials, and a locale that is not compiled.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Handlebars from 'handlebars';
import { createPageEngine, type PageEngine } from '../../src/http/page-engine.ts';
import { createPageStrings, PAGE_LOCALES, type Translate } from '../../src/http/page-strings.ts';

const TEMPLATES = path.resolve(import.meta.dirname, '../../templates');
type Obj = Record<string, unknown>;
type Node = hbs.AST.Node & Obj;

/** Counts the `t` calls made while rendering (not the ones made at start-up to inline). */
function counted(t: Translate): { calls: number; t: Translate } {
  const c: { calls: number; t: Translate } = { calls: 0, t: ((lc, key, vars) => (c.calls++, t(lc, key, vars))) as Translate };
  return c;
}

// ---- Data for a template, read from its tree -------------------------------------------------
// Each path the template reads gets a value: a string for {{x}}, an object for x.y, a one-item
// array for {{#each x}}, and for {{#if x}} truthy or not as the mode decides; x in (eq x "lit")
// takes one of the literals it is compared with.
type Mode = { kind: 'all'; pick: number } | { kind: 'none' } | { kind: 'random'; seed: number };
const parsed = new Map<string, hbs.AST.Program>();
const parse = (source: string) => parsed.get(source) ?? parsed.set(source, Handlebars.parse(source)).get(source)!;

function dataFor(sources: string[], partials: Map<string, string>, mode: Mode, locale: string): Obj & { locale: string } {
  let seed = mode.kind === 'random' ? mode.seed : 0;
  const rnd = () => {
    // mulberry32
    let x = (seed = (seed + 0x6d2b79f5) | 0);
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const root: Obj = {};
  const decided = new WeakMap<Obj, Map<string, boolean>>();
  const eqs: Array<{ obj: Obj; key: string; lits: unknown[] }> = [];
  let counter = 0;
  const decide = (obj: Obj, key: string): boolean => {
    const m = decided.get(obj) ?? new Map<string, boolean>();
    decided.set(obj, m);
    if (!m.has(key)) m.set(key, mode.kind === 'all' ? true : mode.kind === 'none' ? false : rnd() < 0.6);
    return m.get(key)!;
  };
  const isFalsy = (obj: Obj, key: string) => decided.get(obj)?.get(key) === false;
  interface Ctx { obj: Obj; parent?: Ctx }
  // The object holding a path's last part (undefined when a part on the way is falsy).
  const holder = (ctx: Ctx, p: hbs.AST.PathExpression): { obj: Obj; key: string } | undefined => {
    let obj: Obj;
    if (p.data) {
      if (p.parts[0] !== 'root') return undefined; // @index, @first…
      obj = root;
      p = { ...p, parts: p.parts.slice(1) };
    } else {
      let c: Ctx | undefined = ctx;
      for (let d = 0; d < p.depth && c; d++) c = c.parent;
      if (!c) return undefined;
      obj = c.obj;
    }
    if (p.parts.length === 0) return undefined;
    for (const part of p.parts.slice(0, -1)) {
      if (isFalsy(obj, part)) return undefined;
      const v = obj[part];
      if (!v || typeof v !== 'object' || Array.isArray(v)) obj[part] = {};
      obj = obj[part] as Obj;
    }
    return { obj, key: p.parts.at(-1)! };
  };
  const readString = (ctx: Ctx, e: hbs.AST.Expression) => {
    if (e.type === 'SubExpression') return readSub(ctx, e as hbs.AST.SubExpression);
    if (e.type !== 'PathExpression') return;
    const h = holder(ctx, e as hbs.AST.PathExpression);
    if (!h || isFalsy(h.obj, h.key)) return;
    const v = h.obj[h.key];
    if (v === undefined || v === true) h.obj[h.key] = `v${++counter} & <b>"it's"</b> {{x}}`;
  };
  const readSub = (ctx: Ctx, s: hbs.AST.SubExpression | hbs.AST.MustacheStatement) => {
    const name = (s.path as hbs.AST.PathExpression).original;
    if (name === 'eq') {
      const [a, b] = s.params;
      const [p, lit] = a!.type === 'PathExpression' ? [a, b] : [b, a];
      if (p!.type === 'PathExpression' && lit && 'value' in lit) {
        readString(ctx, p!);
        const h = holder(ctx, p as hbs.AST.PathExpression);
        if (h) eqs.push({ obj: h.obj, key: h.key, lits: [(lit as hbs.AST.StringLiteral).value] });
        return;
      }
    }
    for (const e of s.params) readString(ctx, e);
    for (const pair of s.hash?.pairs ?? []) readString(ctx, pair.value);
  };
  const cond = (ctx: Ctx, e: hbs.AST.Expression): void => {
    if (e.type === 'SubExpression') return readSub(ctx, e as hbs.AST.SubExpression);
    if (e.type !== 'PathExpression') return;
    const h = holder(ctx, e as hbs.AST.PathExpression);
    if (!h) return;
    if (decide(h.obj, h.key)) h.obj[h.key] ??= true;
    else delete h.obj[h.key];
  };
  const walk = (program: hbs.AST.Program | undefined, ctx: Ctx): void => {
    for (const node of program?.body ?? []) {
      const n = node as Node;
      if (n.type === 'MustacheStatement') {
        const m = n as unknown as hbs.AST.MustacheStatement;
        if (m.params.length || m.hash?.pairs.length) readSub(ctx, m);
        else readString(ctx, m.path as hbs.AST.Expression);
      } else if (n.type === 'BlockStatement') {
        const b = n as unknown as hbs.AST.BlockStatement;
        const helper = b.path.original;
        if (helper === 'each' && b.params[0]?.type === 'PathExpression') {
          const h = holder(ctx, b.params[0] as hbs.AST.PathExpression);
          if (h && decide(h.obj, h.key)) {
            const arr = Array.isArray(h.obj[h.key]) ? (h.obj[h.key] as Obj[]) : (h.obj[h.key] = [{}]) as Obj[];
            walk(b.program, { obj: arr[0]!, parent: ctx });
          } else if (h) delete h.obj[h.key];
        } else {
          cond(ctx, b.params[0]!);
          walk(b.program, ctx);
        }
        walk(b.inverse, ctx);
      } else if (n.type === 'PartialStatement') {
        const p = n as unknown as hbs.AST.PartialStatement;
        const source = partials.get((p.name as hbs.AST.PathExpression).original);
        assert.ok(source !== undefined, `partial ${(p.name as hbs.AST.PathExpression).original}`);
        // The partial sees this context, with its hash on top: what it reads of a hash key comes from that path.
        walk(parse(source), ctx);
        for (const pair of p.hash?.pairs ?? []) {
          if (pair.value.type !== 'PathExpression' || ctx.obj[pair.key] === undefined) continue;
          const h = holder(ctx, pair.value as hbs.AST.PathExpression);
          if (h && !isFalsy(h.obj, h.key)) h.obj[h.key] = ctx.obj[pair.key];
        }
      }
    }
  };
  for (const s of sources) walk(parse(s), { obj: root });
  for (const e of eqs) {
    if (mode.kind === 'all') e.obj[e.key] = e.lits[mode.pick % e.lits.length];
    else if (mode.kind === 'random' && rnd() < 0.5) e.obj[e.key] = e.lits[0];
  }
  return Object.assign(root, { locale, title: `Title & "${locale}"` });
}

// ---- The real page sets ----------------------------------------------------------------------
const SETS = [
  { name: 'checkout', dir: 'pages', prefix: '', namespaces: ['checkout'] },
  { name: 'checkout + proof', dir: 'pages', prefix: '', namespaces: ['checkout', 'proof'] },
  { name: 'back office', dir: 'pages/backoffice', prefix: 'bo-', namespaces: ['backoffice'] },
];
const MODES: Mode[] = [{ kind: 'all', pick: 0 }, { kind: 'all', pick: 1 }, { kind: 'none' }, ...Array.from({ length: 16 }, (_, i) => i + 1).map((seed) => ({ kind: 'random', seed }) as Mode)];

describe('page engine: static strings inlined per locale (issue 11, P2)', () => {
  for (const set of SETS) {
    it(`renders every ${set.name} page the same through the inlined templates and the helper, in every locale`, () => {
      const pagesDir = path.join(TEMPLATES, set.dir);
      const { t } = createPageStrings({ localesDir: path.join(TEMPLATES, 'locales'), namespaces: set.namespaces });
      const fast = counted(t);
      const slow = counted(t);
      const inlined = createPageEngine({ pagesDir, partialPrefix: set.prefix, t: fast.t });
      const helper = createPageEngine({ pagesDir, partialPrefix: set.prefix, t: slow.t, inlineLocales: [] });
      fast.calls = 0;
      const partials = new Map(readdirSync(path.join(pagesDir, 'partials')).map((f) => [set.prefix + path.basename(f, '.hbs'), readFileSync(path.join(pagesDir, 'partials', f), 'utf8')]));
      const layout = readFileSync(path.join(pagesDir, 'layout.hbs'), 'utf8');
      const pages = readdirSync(pagesDir).filter((f) => f.endsWith('.hbs') && f !== 'layout.hbs');
      assert.ok(pages.length >= 10, `${pages.length} pages`);
      let renders = 0;
      const english: string[] = [];
      const staticKeys = new Set<string>();
      for (const file of pages) {
        const page = path.basename(file, '.hbs');
        const source = readFileSync(path.join(pagesDir, file), 'utf8');
        for (const m of [layout, source, ...partials.values()].join('').matchAll(/\{\{t "([^"]+)"\}\}/g)) staticKeys.add(m[1]!);
        for (const locale of PAGE_LOCALES) {
          for (const mode of MODES) {
            const data = dataFor([layout, source], partials, mode, locale);
            const a = inlined.render(page, data);
            const b = helper.render(page, data);
            assert.equal(a, b, `${set.name} ${page} ${locale} ${JSON.stringify(mode)}`);
            if (locale === 'en') english.push(a);
            renders++;
          }
        }
      }
      // The data reached (nearly) every static string: each shows in some English page.
      const all = english.join('\n');
      const unseen = [...staticKeys].filter((k) => !all.includes(Handlebars.escapeExpression(t('en', k, {}))));
      assert.ok(unseen.length <= staticKeys.size / 50, `${unseen.length} of ${staticKeys.size} static strings never rendered: ${unseen.join(', ')}`);
      // The inlined templates call the helper only where the output can vary.
      assert.ok(fast.calls < slow.calls / 3, `helper calls: inlined ${fast.calls}, helper only ${slow.calls} (${renders} renders)`);
    });
  }

  it('inlines translations with markup characters escaped as the helper would (the back office API key hint)', () => {
    const { t } = createPageStrings({ localesDir: path.join(TEMPLATES, 'locales'), namespaces: ['backoffice'] });
    assert.match(t('en', 'apiKeys.createdHint'), /<key>/);
    const pagesDir = path.join(TEMPLATES, 'pages/backoffice');
    const inlined = createPageEngine({ pagesDir, partialPrefix: 'bo-', t });
    const helper = createPageEngine({ pagesDir, partialPrefix: 'bo-', t, inlineLocales: [] });
    const source = readFileSync(path.join(pagesDir, 'api-keys.hbs'), 'utf8');
    assert.match(source, /\{\{t "apiKeys\.createdHint"\}\}/);
    const data = dataFor([readFileSync(path.join(pagesDir, 'layout.hbs'), 'utf8'), source], new Map([['bo-actions', ''], ['bo-plan-parts', '']]), { kind: 'all', pick: 0 }, 'en');
    const html = inlined.render('api-keys', data);
    assert.ok(html.includes(Handlebars.escapeExpression(t('en', 'apiKeys.createdHint'))));
    assert.ok(html.includes('Bearer &lt;key&gt;'));
    assert.equal(html, helper.render('api-keys', data));
  });

  describe('on made-up templates', () => {
    let dir: string;
    let engines: { inlined: PageEngine; helper: PageEngine; fast: ReturnType<typeof counted> };
    const words: Record<string, Record<string, string>> = {
      en: {
        'a.plain': 'Pay now',
        'a.marks': `Tom & Jerry's <b>"café"</b> = \`x\``,
        'a.curly': 'Literal {{not.a.tag}} and {{{raw}}} and \\{{x}}',
        'a.slash': 'ends with a backslash \\',
        'a.spaces': '  padded\n  ',
        'a.vars': 'Pay {amount} to {merchant}',
        'a.nl': 'line\n',
      },
      it: { 'a.plain': 'Paga ora', 'a.marks': `L'ordine <n.1> & "altro"`, 'a.spaces': ' spazio ', 'a.vars': 'Paga {amount} a {merchant}' },
    };
    const t: Translate = (lc, key, vars) => {
      const text = words[lc]?.[key] ?? words.en![key] ?? key;
      return vars ? text.replace(/\{(\w+)\}/g, (m, n: string) => (n in vars ? String(vars[n] ?? '') : m)) : text;
    };
    const page = [
      '<p>{{t "a.plain"}}</p><p title="{{t "a.marks"}}">{{t "a.marks"}}</p>',
      '<p>{{t "a.curly"}}</p><p>{{{t "a.marks"}}}</p><p>{{& t "a.marks"}}</p>',
      '<p>{{t "a.slash"}}{{t "a.plain"}}</p><p>\\{{t "a.plain"}} {{t "a.plain"}}</p>',
      '<p>[{{~t "a.spaces"~}}]</p><p> {{t "a.spaces"}} </p>',
      '<p>x {{~#if flag~}} {{t "a.spaces"}} {{~/if~}} y</p>',
      '<p>[{{t "a.spaces"}}{{~#if flag~}}{{t "a.spaces"}}{{~else~}}{{t "a.spaces"}}{{~/if}}]</p>',
      '{{t "a.nl"}}{{#if flag}}',
      'standalone?',
      '{{/if}}',
      '  {{t "a.nl"}}',
      '  {{#if flag}}',
      '  {{t "a.nl"}}',
      '  {{/if}}',
      '<p>{{t "a.vars" amount="5 €" merchant="B&B"}}</p><p>{{t "a.vars" amount=amount merchant=merchant}}</p>',
      '<p>{{t "a.vars" amount=3 merchant=true}}</p><p>{{t key}}</p><p>{{t (t "a.plain")}}</p>',
      '{{#each items as |t|}}<i>{{t}}</i><b>{{t "a.plain"}}</b>{{/each}}',
      '{{> part}}{{> part}}',
      '{{!-- {{t "a.plain"}} --}}',
    ].join('\n');

    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'page-engine-'));
      mkdirSync(path.join(dir, 'partials'));
      writeFileSync(path.join(dir, 'layout.hbs'), '<html lang="{{locale}}"><title>{{title}} · {{t "a.marks"}}</title>\n{{{body}}}\n{{> part}}</html>\n');
      writeFileSync(path.join(dir, 'partials', 'part.hbs'), '<em>{{t "a.marks"}}</em>{{#if flag}} {{t "a.plain"}}{{/if}}\n');
      writeFileSync(path.join(dir, 'page.hbs'), page);
      const fast = counted(t);
      engines = { inlined: createPageEngine({ pagesDir: dir, t: fast.t, inlineLocales: ['en', 'it'] }), helper: createPageEngine({ pagesDir: dir, t, inlineLocales: [] }), fast };
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const locale of ['en', 'it', 'de', 'xx']) {
      for (const flag of [true, false]) {
        it(`renders the same in "${locale}"${flag ? '' : ' with the branches not taken'}`, () => {
          const data = { locale, title: 'T', flag, key: 'a.marks', amount: '7 <€>', merchant: 'M & "N"', items: ['one', '<two>'] };
          assert.equal(engines.inlined.render('page', data), engines.helper.render('page', data));
        });
      }
    }

    it('calls the helper only for what can vary, and the text is escaped as the helper escapes it', () => {
      const data = { locale: 'it', title: 'T', flag: true, key: 'a.marks', amount: '7', merchant: 'M', items: [] };
      engines.fast.calls = 0;
      const html = engines.inlined.render('page', data);
      // {{t "a.vars" amount=amount …}}, {{t key}} and {{t (t "a.plain")}} (two calls): 4.
      assert.equal(engines.fast.calls, 4);
      assert.ok(html.includes('L&#x27;ordine &lt;n.1&gt; &amp; &quot;altro&quot;'));
      assert.ok(html.includes(`<p>L'ordine <n.1> & "altro"</p>`));
      assert.ok(html.includes('Literal {{not.a.tag}} and {{{raw}}} and \\{{x}}'));
      assert.ok(html.includes('<p>{{t "a.plain"}} Paga ora</p>'));
      engines.fast.calls = 0;
      engines.inlined.render('page', { ...data, locale: 'de' });
      assert.ok(engines.fast.calls > 20, `a locale not compiled goes through the helper (${engines.fast.calls} calls)`);
    });
  });
});
