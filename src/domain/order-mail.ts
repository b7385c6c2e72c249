// Reads an order from the body of a merchant's mail: `Label: value` lines with labels in English,
// Italian, French, German and Spanish. Pure: no I/O, the clock comes in as `now`.
// Every problem is reported (field, code, value, 1-based line) so the merchant's reply can name
// them all; a draft is returned only when there is none. The same field reader serves batches
// (src/domain/batch.ts), where positions are rows instead of lines.
//
// Which lines count: the merchant's new text, down to a signature, a sign-off ("Kind regards,")
// after the order lines, or the history of a reply. When the new text holds no order line and the
// mail forwards another one (a "Forwarded message" block, or an Outlook separator in a mail whose
// subject says FW/I/WG/TR/RV), the forwarded part is read instead.
import { z } from 'zod';
import { parseExpiry } from './duration.ts';
import { isAppError, type FieldProblem } from './errors.ts';
import { htmlToText } from './html-to-text.ts';
import { isCurrency, parseAmount } from './money.ts';
import { type OrderDraft } from './order-draft.ts';

export type { OrderDraft };

export type OrderField =
  | 'amount'
  | 'currency'
  | 'reference'
  | 'description'
  | 'customerName'
  | 'customerEmail'
  | 'language'
  | 'expiry'
  | 'delivery';

/** Problem codes of this parser, besides parseAmount's AMOUNT_* codes. */
export const ORDER_MAIL_CODES = [
  'ORDER_AMOUNT_MISSING',
  'ORDER_CURRENCY_UNKNOWN',
  'ORDER_REFERENCE_INVALID',
  'ORDER_TEXT_TOO_LONG',
  'ORDER_EMAIL_INVALID',
  'ORDER_LANGUAGE_UNKNOWN',
  'ORDER_EXPIRY_INVALID',
  'ORDER_EXPIRY_PAST',
  'ORDER_DELIVERY_UNKNOWN',
  'ORDER_FIELD_DUPLICATE',
] as const;

/** Codes of notices: things done to an accepted order that the merchant should know about. */
export const ORDER_NOTICE_CODES = ['ORDER_EXPIRY_CAPPED'] as const;

/** Folds case and accents: "Währung" → "wahrung", "Descripción" → "descripcion". */
export function fold(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

/** Labels are compared folded and with everything but letters removed ("E-mail cliente" → "emailcliente"). */
export const labelKey = (s: string) => fold(s).replace(/[^a-z]/g, '');

/** Word lists (space-separated, folded) → a lookup from each word to its row's key. */
function wordMap<K extends string>(rows: ReadonlyArray<readonly [K, string]>): Map<string, K> {
  const map = new Map<string, K>();
  for (const [key, words] of rows) for (const w of words.split(' ')) map.set(w, key);
  return map;
}

// One row per field; words are already folded label keys. en / it / fr / de / es.
const LABEL_FIELD = wordMap<OrderField>([
  ['amount', 'amount amountdue totalamount total sum price importo importototale totale somma prezzo montant montanttotal somme prix betrag gesamtbetrag summe preis importe importetotal monto precio'],
  ['currency', 'currency valuta divisa devise monnaie wahrung moneda'],
  ['reference', 'reference ref orderref order orderid ordernumber orderno riferimento rif ordine numeroordine nordine commande numerodecommande referenz bestellung bestellnummer referencia pedido numerodepedido'],
  ['description', 'description desc details descrizione causale dettagli libelle objet beschreibung verwendungszweck descripcion concepto'],
  ['customerName', 'customer customername name fullname cliente nomecliente nome client nomduclient nom kunde kundenname nombre nombredelcliente'],
  ['customerEmail', 'email mail emailaddress customeremail customermail emailcliente mailcliente indirizzoemail courriel emailclient emailduclient adresseemail kundenemail emailkunde correo correoelectronico emaildelcliente'],
  ['language', 'language lang locale lingua langue sprache idioma'],
  ['expiry', 'expiry expires expiration expirydate expiresin validfor validuntil lifetime scadenza validita validoper validofino datadiscadenza valablejusquau validite gultigbis gultigkeit ablauf ablaufdatum caducidad vencimiento validohasta'],
  ['delivery', 'delivery sendto deliverto invio inviaa destinatario envoi envoyera zustellung sendenan versand envio enviara'],
]);

const LANGUAGE_CODE = wordMap([
  ['en', 'en eng english inglese anglais englisch ingles'],
  ['it', 'it ita italian italiano italien italienisch'],
  ['fr', 'fr fra fre french francese francais franzosisch frances'],
  ['de', 'de deu ger german tedesco allemand deutsch aleman'],
  ['es', 'es spa spanish spagnolo espagnol spanisch espanol castellano'],
]);

const DELIVERY_MODE = wordMap<'merchant' | 'customer'>([
  ['merchant', 'merchant me tome myself shop store seller esercente negozio venditore ame commercant marchand vendeur moi amoi handler mir anmich verkaufer comerciante tienda vendedor ami'],
  ['customer', 'customer client buyer directly cliente alcliente acquirente compratore aucliente acheteur kunde ankunde kaufer comprador'],
]);

const CURRENCY_SYMBOLS: Record<string, string> = { '€': 'EUR', $: 'USD', US$: 'USD', '£': 'GBP', '¥': 'JPY', Fr: 'CHF' };

const MAX = { reference: 64, description: 500, customerName: 120 } as const;

/** The field a label names (any of the five languages, any case or accents), if any. */
export function fieldForLabel(label: string): OrderField | undefined {
  return LABEL_FIELD.get(labelKey(label));
}

export interface FieldContext {
  defaultCurrency: string;
  now: Date;
  maxLifetimeDays: number;
  /** Merchant's IANA time zone: an expiry date means the end of that day there. */
  timeZone?: string | undefined;
}

export interface ParseOrderMailInput extends FieldContext {
  /** The text part; when blank, `html` is converted instead. */
  text?: string | undefined;
  html?: string | undefined;
  subject?: string | undefined;
}

export interface ParsedOrderMail {
  draft?: OrderDraft;
  problems: FieldProblem[];
  /** Accepted, but changed: e.g. an expiry beyond the maximum, capped. */
  notices: FieldProblem[];
  /** The body the line numbers refer to ('html' when it was converted from the HTML part). */
  body: 'text' | 'html' | 'none';
  /** How many order lines were read (0: the body holds no order at all). */
  fieldsFound: number;
  /** True when the order lines came from a forwarded message rather than the new text. */
  forwarded: boolean;
}

/** A value and where it was given: a line of a mail or a row of a batch. */
export interface FieldValue {
  value: string;
  line?: number;
  row?: number;
}

const at = (v: FieldValue) => ({ value: v.value, ...(v.line !== undefined ? { line: v.line } : {}), ...(v.row !== undefined ? { row: v.row } : {}) });

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

type StopKind = 'signature' | 'reply' | 'forward' | 'separator';

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
function isForwardSubject(subject: string): boolean {
  return /^\s*(fwd?|fw|i|wg|tr|rv|enc|doorst)\s*:/i.test(subject);
}

/** Trims spaces and bold/italic markers ("*", "_") at both ends; a loop, as a regex would be quadratic. */
function trimDecoration(value: string): string {
  const skip = (c: string | undefined) => c === '*' || c === '_' || (c !== undefined && /\s/.test(c));
  let start = 0;
  let end = value.length;
  while (start < end && skip(value[start])) start++;
  while (end > start && skip(value[end - 1])) end--;
  return value.slice(start, end);
}

/** Splits "Label: value" (or "Label<TAB>value", "Label  value") when Label is one we know. */
function labelled(line: string): { field: OrderField; value: string } | undefined {
  const tryLabel = (label: string, value: string) => {
    // Bullets and bold markers may wrap a label ("- *Amount:*"); digits never belong to one.
    if (label.length > 40 || /\d/.test(label)) return undefined;
    const field = LABEL_FIELD.get(labelKey(label));
    return field ? { field, value: trimDecoration(value) } : undefined;
  };
  const colon = line.indexOf(':');
  if (colon > 0) {
    const hit = tryLabel(line.slice(0, colon), line.slice(colon + 1));
    if (hit) return hit;
  }
  const gap = /\t|\s{2,}/.exec(line);
  if (gap && gap.index > 0) return tryLabel(line.slice(0, gap.index), line.slice(gap.index + gap[0].length));
  return undefined;
}

/** "Mario Rossi <mario@example.com>" → name and address; "mario@example.com <mailto:…>" too. */
function splitAddress(value: string): { name?: string; address: string } {
  const lt = value.indexOf('<');
  const gt = value.indexOf('>', lt + 1);
  if (lt >= 0 && gt > lt) {
    const inside = value.slice(lt + 1, gt).replace(/^mailto:/i, '').trim();
    const outside = value.slice(0, lt).replace(/["']/g, '').trim();
    if (outside.includes('@') && outside.toLowerCase() === inside.toLowerCase()) return { address: inside };
    return outside ? { name: outside, address: inside } : { address: inside };
  }
  return { address: value.replace(/^mailto:/i, '').trim() };
}

const EmailSchema = z.email();

/** Removes "Re:", "Fwd:", "R:", "I:", "AW:", "WG:", "TR:", "RV:" prefixes, however many. */
export function stripSubjectPrefixes(subject: string): string {
  let s = subject.trim();
  for (;;) {
    const m = /^(re|r|fwd?|i|aw|wg|tr|rv|enc|sv|antw)(\[\d+\])?\s*:\s*/i.exec(s);
    if (!m) return s;
    s = s.slice(m[0].length);
  }
}

function bodyOf(input: ParseOrderMailInput): { text: string; body: ParsedOrderMail['body'] } {
  if (input.text && input.text.trim() !== '') return { text: input.text, body: 'text' };
  if (input.html && input.html.trim() !== '') {
    const isLabel = (cell: string) => LABEL_FIELD.has(labelKey(cell)) && !/\d/.test(cell);
    return { text: htmlToText(input.html, { isLabel }), body: 'html' };
  }
  return { text: '', body: 'none' };
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
function segments(text: string, forwardSubject: boolean): Segment[] {
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

export interface ReadFields {
  draft?: OrderDraft;
  problems: FieldProblem[];
  notices: FieldProblem[];
}

/**
 * Turns the values of one order (from mail lines or a batch row) into a draft, naming every
 * problem with the field, the value and where it was given.
 */
export function readOrderFields(
  found: ReadonlyMap<OrderField, FieldValue>,
  ctx: FieldContext & { fallbackDescription?: string | undefined },
): ReadFields {
  const problems: FieldProblem[] = [];
  const notices: FieldProblem[] = [];
  const problem = (field: OrderField, code: string, message: string, v?: FieldValue) =>
    problems.push({ field, code, message, ...(v ? at(v) : {}) });

  const draft: Partial<OrderDraft> = {};
  const get = (f: OrderField) => {
    const v = found.get(f);
    return v && v.value !== '' ? v : undefined;
  };

  // Currency first: the amount is read with it.
  let explicitCurrency: string | undefined;
  const currency = get('currency');
  if (currency) {
    const c = CURRENCY_SYMBOLS[currency.value] ?? currency.value.toUpperCase();
    if (isCurrency(c)) explicitCurrency = c;
    else problem('currency', 'ORDER_CURRENCY_UNKNOWN', 'expected an ISO 4217 currency code such as EUR, USD, GBP, CHF', currency);
  }

  const amount = found.get('amount');
  if (!amount || amount.value === '') {
    problems.push({
      field: 'amount',
      code: 'ORDER_AMOUNT_MISSING',
      message: 'an amount is required, e.g. "Amount: 129.90"',
      ...(amount ? { ...at(amount), value: '' } : {}),
    });
  } else {
    const r = parseAmount(amount.value, ctx.defaultCurrency, explicitCurrency);
    if (r.ok) {
      draft.amountMinor = r.money.amountMinor;
      draft.currency = r.money.currency;
    } else {
      problems.push({ ...r.problem, field: 'amount', ...at(amount) });
    }
  }

  const reference = get('reference');
  if (reference) {
    if (reference.value.length > MAX.reference || /[\u0000-\u001f<>]/.test(reference.value)) {
      problem('reference', 'ORDER_REFERENCE_INVALID', `expected at most ${MAX.reference} characters, without < or >`, reference);
    } else draft.reference = reference.value;
  }

  const description = get('description');
  const fallback = ctx.fallbackDescription ?? '';
  if (description) {
    if (description.value.length > MAX.description) {
      problem('description', 'ORDER_TEXT_TOO_LONG', `expected at most ${MAX.description} characters`, description);
    } else draft.description = description.value;
  } else if (fallback) {
    draft.description = fallback.slice(0, MAX.description);
  }

  const email = get('customerEmail');
  let nameFromAddress: string | undefined;
  if (email) {
    const { name, address } = splitAddress(email.value);
    if (EmailSchema.safeParse(address).success) {
      draft.customerEmail = address.toLowerCase();
      nameFromAddress = name;
    } else problem('customerEmail', 'ORDER_EMAIL_INVALID', 'expected an e-mail address such as mario.rossi@example.com', email);
  }

  const name = get('customerName');
  if (name) {
    // "Customer: Mario Rossi <mario@example.com>" gives both.
    const split = name.value.includes('@') ? splitAddress(name.value) : undefined;
    const value = split?.name ?? name.value;
    if (split && !email && EmailSchema.safeParse(split.address).success) draft.customerEmail = split.address.toLowerCase();
    if (value.length > MAX.customerName) {
      problem('customerName', 'ORDER_TEXT_TOO_LONG', `expected at most ${MAX.customerName} characters`, name);
    } else draft.customerName = value;
  } else if (nameFromAddress) draft.customerName = nameFromAddress.slice(0, MAX.customerName);

  const language = get('language');
  if (language) {
    const code = LANGUAGE_CODE.get(labelKey(language.value.split(/[-_]/)[0] ?? ''));
    if (code) draft.locale = code;
    else problem('language', 'ORDER_LANGUAGE_UNKNOWN', 'expected one of en, it, fr, de, es (or English, Italiano, Français, Deutsch, Español)', language);
  }

  const expiry = get('expiry');
  if (expiry) {
    const r = parseExpiry(expiry.value, { now: ctx.now, maxLifetimeDays: ctx.maxLifetimeDays, timeZone: ctx.timeZone });
    if (r.ok) {
      draft.expiresAt = r.expiresAt;
      if (r.capped) {
        notices.push({
          field: 'expiry',
          code: 'ORDER_EXPIRY_CAPPED',
          message: `capped at the maximum link lifetime of ${ctx.maxLifetimeDays} days`,
          ...at(expiry),
        });
      }
    } else problem('expiry', r.code, r.message, expiry);
  }

  const delivery = get('delivery');
  if (delivery) {
    const mode = DELIVERY_MODE.get(labelKey(delivery.value));
    if (mode) draft.delivery = mode;
    else problem('delivery', 'ORDER_DELIVERY_UNKNOWN', 'expected merchant (the link comes to you) or customer (straight to the customer)', delivery);
  }

  if (problems.length > 0 || draft.amountMinor === undefined || draft.currency === undefined) return { problems, notices };
  return { draft: draft as OrderDraft, problems, notices };
}

const byPosition = (a: FieldProblem, b: FieldProblem) => (a.line ?? a.row ?? Infinity) - (b.line ?? b.row ?? Infinity);

export function parseOrderMail(input: ParseOrderMailInput): ParsedOrderMail {
  const { text, body } = bodyOf(input);
  const parts = segments(text, isForwardSubject(input.subject ?? ''));
  // The new text wins; a forwarded part counts only when the new text holds no order line.
  const chosen = parts[0]!.count > 0 ? parts[0]! : (parts.find((p) => p.kind === 'forward' && p.count > 0) ?? parts[0]!);
  const forwarded = chosen !== parts[0];
  const r = readOrderFields(chosen.found, {
    ...input,
    // A forward's subject is the forwarded one's with a prefix: stripped either way.
    fallbackDescription: input.subject ? stripSubjectPrefixes(input.subject) : '',
  });
  const problems = [...chosen.problems, ...r.problems].sort(byPosition);
  const result: ParsedOrderMail = { problems, notices: r.notices, body, fieldsFound: chosen.count, forwarded };
  if (r.draft && problems.length === 0) result.draft = r.draft;
  return result;
}

/** The parts of a parsed message the order reader needs (mailparser's ParsedMail fits). */
export interface MailContent {
  subject?: string | undefined;
  text?: string | undefined;
  html?: string | false | undefined;
  attachments?: ReadonlyArray<{ contentType: string; filename?: string | undefined; content: Uint8Array }> | undefined;
}

/** Forwarded-as-attachment messages read at most, and their largest size: a mail is not an archive. */
const MAX_ATTACHED_MESSAGES = 3;
const MAX_ATTACHED_BYTES = 2 * 1024 * 1024;

/**
 * Reads the order of a parsed mail: its body, or, when the body holds no order line, a message
 * forwarded as an attachment (message/rfc822, Outlook's "Forward as attachment"), parsed with
 * `parseAttached` (the caller's MIME parser; this module does no I/O).
 */
export async function readOrderMail(
  mail: MailContent,
  ctx: FieldContext,
  parseAttached?: (raw: Buffer) => Promise<MailContent>,
): Promise<ParsedOrderMail & { attachedMessage?: string }> {
  const html = typeof mail.html === 'string' ? mail.html : undefined;
  const parsed = parseOrderMail({ ...ctx, text: mail.text, html, subject: mail.subject });
  if (parsed.fieldsFound > 0 || !parseAttached) return parsed;
  const attached = (mail.attachments ?? [])
    .filter((a) => a.contentType.toLowerCase() === 'message/rfc822' && a.content.byteLength <= MAX_ATTACHED_BYTES)
    .slice(0, MAX_ATTACHED_MESSAGES);
  for (const a of attached) {
    let inner: MailContent;
    try {
      inner = await parseAttached(Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength));
    } catch (e) {
      // Only the parser refusing these bytes (MAIL_PARSE_FAILED, or the in-thread parser's own
      // error) means the attachment holds no order we can read: the mail is still answered. A
      // parser that is busy, shut down, crashed or out of time says nothing about the attachment:
      // the error goes up and intake retries the whole message.
      if (isAppError(e) && e.code !== 'MAIL_PARSE_FAILED') throw e;
      continue;
    }
    const r = parseOrderMail({
      ...ctx,
      text: inner.text,
      html: typeof inner.html === 'string' ? inner.html : undefined,
      subject: inner.subject || mail.subject,
    });
    if (r.fieldsFound > 0) return { ...r, forwarded: true, attachedMessage: a.filename ?? inner.subject ?? 'message' };
  }
  return parsed;
}
