// A page's static strings inlined for one locale (issue 11, P2): in a parsed template, each
// `{{t "key"}}` whose output is fixed for the locale (a literal key, and no hash or only literal
// hash values) becomes the text the `t` helper would have produced, HTML-escaped as Handlebars
// escapes it (`{{{t …}}}` raw). A content node is emitted as written, so a `{{` or `\` in a
// translation stays literal. Dynamic keys, hash values from the data and subexpressions `(t …)`
// stay helper calls. The tree is copied where it changes only, so locales share the rest.
import Handlebars from 'handlebars';

type Program = hbs.AST.Program;
type Statement = hbs.AST.Statement;
type Mustache = hbs.AST.MustacheStatement;

/** The helper's output for a key and its literal hash values (exactly what `{{t …}}` passes). */
export type StaticTranslate = (key: string, hash: Record<string, unknown>) => string;

const LITERALS = new Set(['StringLiteral', 'NumberLiteral', 'BooleanLiteral']);

/** The literal key and hash of a `{{t "key" a="x"}}` call, or undefined when its output can vary. */
function staticCall(m: Mustache): { key: string; hash: Record<string, unknown> } | undefined {
  const p = m.path as hbs.AST.PathExpression;
  if (p.type !== 'PathExpression' || p.original !== 't' || p.data || p.depth !== 0 || p.parts.length !== 1) return undefined;
  if (m.params.length !== 1 || m.params[0]!.type !== 'StringLiteral') return undefined;
  const hash: Record<string, unknown> = {};
  for (const pair of m.hash?.pairs ?? []) {
    if (!LITERALS.has(pair.value.type)) return undefined;
    hash[pair.key] = (pair.value as hbs.AST.StringLiteral | hbs.AST.NumberLiteral | hbs.AST.BooleanLiteral).value;
  }
  return { key: (m.params[0] as hbs.AST.StringLiteral).value, hash };
}

function inlineProgram(program: Program, translate: StaticTranslate, shadowed: boolean): Program {
  // A block parameter named `t` ({{#each x as |t|}}) would make `{{t …}}` a read of it, not the helper.
  const hidden = shadowed || (program.blockParams ?? []).includes('t');
  let body: Statement[] | undefined;
  program.body.forEach((node, i) => {
    const next = inlineStatement(node, translate, hidden);
    if (next !== node) (body ??= program.body.slice())[i] = next;
  });
  return body ? { ...program, body } : program;
}

function inlineStatement(node: Statement, translate: StaticTranslate, shadowed: boolean): Statement {
  if (node.type === 'MustacheStatement') {
    const m = node as Mustache;
    const call = shadowed ? undefined : staticCall(m);
    if (!call) return node;
    const text = translate(call.key, call.hash);
    const value = m.escaped ? Handlebars.escapeExpression(text) : text;
    return { type: 'ContentStatement', value, original: value, loc: node.loc } as unknown as Statement;
  }
  if (node.type === 'BlockStatement' || node.type === 'DecoratorBlock' || node.type === 'PartialBlockStatement') {
    const b = node as hbs.AST.BlockStatement;
    const program = b.program && inlineProgram(b.program, translate, shadowed);
    const inverse = b.inverse && inlineProgram(b.inverse, translate, shadowed);
    return program === b.program && inverse === b.inverse ? node : ({ ...b, program, inverse } as Statement);
  }
  return node;
}

/** The parsed template with the locale's static strings as text (the input is not changed). */
export function inlineStaticStrings(ast: Program, translate: StaticTranslate): Program {
  return inlineProgram(ast, translate, false);
}

/**
 * A Handlebars instance whose compile takes an already-processed tree as it is: `parse` ran the
 * whitespace control (`~`, standalone lines) on the source with the `{{t}}` nodes in place, and a
 * second pass over the inlined text could strip it or a neighbour differently.
 */
export function compileParsedAsIs(hbs: typeof Handlebars): void {
  const parse = hbs.parse;
  (hbs as { parse: unknown }).parse = (input: string | Program, options?: Parameters<typeof Handlebars.parse>[1]) =>
    typeof input === 'string' ? parse(input, options) : input;
}
