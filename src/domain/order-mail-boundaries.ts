// Where the merchant's new text ends in an order mail: signatures, sign-offs after the order
// lines, the history of a reply, a forwarded message (in five languages and the common clients'
// shapes). The body is cut into segments (new text, forwarded, ignored) and the "Label: value"
// lines of each are collected for the parser (src/domain/order-mail.ts).
import { type FieldProblem } from './errors.ts';
import { at, fold, type FieldValue, labelKey, labelled, type OrderField } from './order-mail-labels.ts';

/** Attribution verbs of reply headers, folded ("On …, X wrote:", "Il giorno … ha scritto:", …). */
const REPLY_VERB = /(^|\s)(wrote|ha scritto|a ecrit|escribio|schrieb)(\s.*)?:$/;
/** How an attribution starts: "On", "Il (giorno)", "Le", "Am", "El", after an optional "- " or "--- ". */
const REPLY_INTRO = /^[-\s]*(on|il|le|am|el) /;
/** Lines an attribution may wrap over (Gmail wraps before the address or the verb). */
const REPLY_WRAP_LINES = 3;

/** Lines that introduce a forwarded message (folded): Gmail, Thunderbird, Apple Mail, in five languages. */
const FORWARD_WORDS = /forwarded|inoltrat|transfere|reexpedie|weitergeleitet|reenviad/;
/** Header names of a forwarded or quoted message's header block (folded, letters only). */
const FORWARD_HEADERS = new Set(
  'from de da von sent envoye inviato gesendet enviado date data datum fecha to a an para cc ccn bcc subject objet oggetto ogg betreff asunto replyto'.split(' '),
);
/** Where Outlook's bare reply header block starts: the sender, or (Mac, webmail) the date. */
const HEADER_BLOCK_START = new Set('from de da von date data datum fecha'.split(' '));
/** Mobile and desktop client signatures ("Sent from my iPhone", "Inviato da iPhone", …), folded. */
const CLIENT_SIGNATURE = /^(sent from (my |mail for )|get outlook for |inviato da (iphone|ipad|android|outlook|blackberry|il mio|mio)|inviato dal mio |envoye (de|depuis) (mon |l'?outlook|outlook)|von meinem .* gesendet$|outlook fur .* herunterladen|enviado (desde|con) (mi |outlook|el )|obtener outlook para |scarica outlook per |telecharger outlook pour )/;
/** Sign-offs (folded, letters and spaces only): after order lines, the rest is a signature. */
const CLOSINGS = new Set([
  'thanks', 'thank you', 'many thanks', 'thanks in advance', 'regards', 'best regards', 'kind regards', 'best', 'cheers', 'best wishes',
  'grazie', 'grazie mille', 'saluti', 'cordiali saluti', 'distinti saluti', 'un saluto', 'buona giornata',
  'merci', 'merci beaucoup', 'cordialement', 'bien cordialement', 'bien a vous', 'salutations', 'bonne journee',
  'danke', 'vielen dank', 'mit freundlichen grussen', 'freundliche grusse', 'viele grusse', 'beste grusse', 'lg', 'mfg', 'gruss',
  'gracias', 'muchas gracias', 'saludos', 'un saludo', 'atentamente', 'saludos cordiales', 'cordialmente',
]);

export type StopKind = 'signature' | 'reply' | 'forward' | 'separator';

/** One line as the boundary rules see it, with its neighbours. */
interface LineAt {
  lines: readonly string[];
  i: number;
  trimmed: string;
  /** Order lines were read before this one (a sign-off only counts then). */
  afterOrder: boolean;
  /** Inside the header block of a forwarded message: its From:/Date: lines are not a new boundary. */
  inHeaders: boolean;
}

/** A boundary: its kind and how many lines before this one it began (a wrapped reply header). */
interface Stop {
  kind: StopKind;
  back: number;
}

/** "From: x" → "from"; "*Von:* x" → "von"; "De : x" → "de". Undefined when the line is no header. */
function headerName(trimmed: string): string | undefined {
  const colon = trimmed.indexOf(':');
  if (colon <= 0 || colon > 20) return undefined;
  const name = labelKey(trimmed.slice(0, colon));
  return FORWARD_HEADERS.has(name) ? name : undefined;
}

/** Up to `n` non-empty lines after line `i`, trimmed. */
function nextLines(lines: readonly string[], i: number, n: number): string[] {
  const out: string[] = [];
  for (let k = i + 1; k < lines.length && out.length < n; k++) {
    const t = lines[k]!.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/**
 * The boundary rules, in order; the first that matches decides. A 'separator' (Outlook's
 * underscores, "-----Original Message-----", its bare header block) ends the new text as a reply's
 * history or, when the subject says FW/I/WG/TR/RV, starts the forwarded order.
 */
const STOP_RULES: ReadonlyArray<{ name: string; stop: (l: LineAt) => Stop | StopKind | undefined }> = [
  // "-- " is the standard signature delimiter; the trailing space is often lost on the way.
  { name: 'signature delimiter', stop: (l) => (l.trimmed === '--' ? 'signature' : undefined) },
  { name: 'Outlook underscores', stop: (l) => (l.trimmed.startsWith('__________') && /^_+$/.test(l.trimmed) ? 'separator' : undefined) },
  {
    // "---------- Forwarded message ---------", "-----Original Message-----", "-------- Messaggio originale --------", …
    name: 'dashed marker',
    stop: (l) => {
      if (!l.trimmed.startsWith('-----') && !l.trimmed.startsWith('————')) return undefined;
      const f = fold(l.trimmed);
      if (FORWARD_WORDS.test(f)) return 'forward';
      return /original|origine|ursprungliche/.test(f) ? 'separator' : undefined;
    },
  },
  {
    // Apple Mail: "Begin forwarded message:", "Inizio messaggio inoltrato:", "Début du message réexpédié :".
    name: 'forward intro',
    stop: (l) => (l.trimmed.endsWith(':') && l.trimmed.length <= 80 && FORWARD_WORDS.test(fold(l.trimmed)) && l.trimmed.split(' ').length <= 6 ? 'forward' : undefined),
  },
  {
    // "On …, X wrote:", "Il … ha scritto:", "Le … a écrit :", "Am … schrieb X:", "El … escribió:",
    // possibly wrapped over up to three lines; the history starts at the line that opened it.
    name: 'reply attribution',
    stop: (l) => {
      if (!l.trimmed.endsWith(':') || l.trimmed.length > 200) return undefined;
      let joined = '';
      for (let back = 0; back < REPLY_WRAP_LINES && l.i - back >= 0; back++) {
        const line = l.lines[l.i - back]!.trim();
        if (line === '' || (back > 0 && line.startsWith('>'))) break;
        joined = back === 0 ? line : `${line} ${joined}`;
        if (joined.length > 300) break;
        const f = fold(joined).replace(/\s+/g, ' ');
        if (REPLY_INTRO.test(f) && REPLY_VERB.test(f)) return { kind: 'reply', back };
      }
      return undefined;
    },
  },
  {
    // Outlook desktop (2013+), Outlook for Mac and mobile: a bare "From:/Sent:/To:/Subject:" block
    // (or "Da:/Inviato:", "De :/Envoyé :", "Von:/Gesendet:", "De:/Enviado:") with no line above it.
    // Another header on the next line, or two among the next three (a wrapped sender): an order
    // line "From: the shop window" is not a block.
    name: 'Outlook header block',
    stop: (l) => {
      if (l.inHeaders) return undefined;
      const name = headerName(l.trimmed);
      if (!name || !HEADER_BLOCK_START.has(name)) return undefined;
      const next = nextLines(l.lines, l.i, 3);
      const isHeader = (t: string | undefined) => t !== undefined && headerName(t) !== undefined && headerName(t) !== name;
      return isHeader(next[0]) || next.filter(isHeader).length >= 2 ? 'separator' : undefined;
    },
  },
  {
    name: 'client signature',
    stop: (l) => (l.trimmed.length <= 60 && !l.trimmed.includes(':') && CLIENT_SIGNATURE.test(fold(l.trimmed)) ? 'signature' : undefined),
  },
  {
    name: 'sign-off after the order',
    stop: (l) => {
      if (!l.afterOrder || l.trimmed.length > 30) return undefined;
      const f = fold(l.trimmed).replace(/ß/g, 'ss').replace(/[^a-z ]/g, '').replace(/\s+/g, ' ').trim();
      return CLOSINGS.has(f) ? 'signature' : undefined;
    },
  },
];

/** What a line ends, if anything (the first rule that matches). */
function stopAt(l: LineAt): Stop | undefined {
  for (const rule of STOP_RULES) {
    const r = rule.stop(l);
    if (r) return typeof r === 'string' ? { kind: r, back: 0 } : r;
  }
  return undefined;
}

/** "Subject: Fwd: …", "I: …", "WG: …": the mail forwards another one. */
export function isForwardSubject(subject: string): boolean {
  return /^\s*(fwd?|fw|i|wg|tr|rv|enc|doorst)\s*:/i.test(subject);
}

const sameText = (s: string) => fold(s).replace(/\s+/g, ' ');

interface Segment {
  kind: 'new' | 'forward' | 'ignored';
  /** 1-based line where it starts; for a later segment, the line of its boundary. */
  line: number;
  /** The boundary that started it (later segments only). */
  stop?: StopKind;
  found: Map<OrderField, FieldValue>;
  problems: FieldProblem[];
  count: number;
}

/**
 * Splits the body into the new text and forwarded parts, collecting `Label: value` lines of each
 * (quoted lines and ignored parts contribute nothing). One pass, linear in the input.
 */
export function segments(text: string, forwardSubject: boolean): Segment[] {
  const newSegment = (kind: Segment['kind'], line: number, stop?: StopKind): Segment => ({
    kind, line, ...(stop ? { stop } : {}), found: new Map(), problems: [], count: 0,
  });
  const all: Segment[] = [newSegment('new', 1)];
  let current = all[0]!;
  let previous = '';
  /** After a forward marker: skip the forwarded message's header block (From:, Sent:, …). */
  let inHeaders = false;
  const lines = text.split(/\r\n|\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i]!.trim();
    if (trimmed === '') {
      if (inHeaders && previous !== '') inHeaders = false;
      continue;
    }
    if (trimmed.startsWith('>')) continue;
    const stop = stopAt({ lines, i, trimmed, afterOrder: current.count > 0, inHeaders });
    if (stop) {
      const forward = stop.kind === 'forward' || (stop.kind === 'separator' && forwardSubject);
      current = newSegment(forward ? 'forward' : 'ignored', i + 1 - stop.back, stop.kind);
      all.push(current);
      inHeaders = forward;
      previous = '';
      continue;
    }
    const prev = previous;
    previous = trimmed.slice(0, 8);
    if (inHeaders) {
      const colon = trimmed.indexOf(':');
      if (colon > 0 && colon < 20 && FORWARD_HEADERS.has(labelKey(trimmed.slice(0, colon)))) continue;
      // Header values may wrap onto the next line; an unknown line ends the block.
      if (prev !== '' && /^\s/.test(lines[i]!)) continue;
      inHeaders = false;
    }
    if (current.kind === 'ignored') continue;
    const hit = labelled(trimmed);
    if (!hit) continue;
    current.count++;
    const value = { value: hit.value, line: i + 1 };
    const first = current.found.get(hit.field);
    if (!first) {
      current.found.set(hit.field, value);
    } else if (first.value !== value.value && sameText(first.value) !== sameText(value.value)) {
      current.problems.push({
        field: hit.field,
        code: 'ORDER_FIELD_DUPLICATE',
        message: `given twice with different values (first on line ${first.line}: "${first.value}")`,
        ...at(value),
      });
    }
  }
  return all;
}

/**
 * Where the merchant's new text ends (a signature, a reply's history, a forwarded message): the
 * 1-based line and the kind of boundary; undefined when the whole body is new text.
 */
export function firstStop(text: string, subject = ''): { line: number; kind: StopKind } | undefined {
  const later = segments(text, isForwardSubject(subject))[1];
  return later ? { line: later.line, kind: later.stop! } : undefined;
}
