// Reads an order from the body of a merchant's mail: `Label: value` lines with labels in English,
// Italian, French, German and Spanish. Pure: no I/O, the clock comes in as `now`.
// Every problem is reported (field, code, value, 1-based line) so the merchant's reply can name
// them all; a draft is returned only when there is none.
import { z } from 'zod';
import { parseExpiry } from './duration.ts';
import { type FieldProblem } from './errors.ts';
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

/** Folds case and accents: "Währung" → "wahrung", "Descripción" → "descripcion". */
export function fold(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

/** Labels are compared folded and with everything but letters removed ("E-mail cliente" → "emailcliente"). */
const labelKey = (s: string) => fold(s).replace(/[^a-z]/g, '');

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

export interface ParseOrderMailInput {
  /** The text part; when blank, `html` is converted instead. */
  text?: string | undefined;
  html?: string | undefined;
  subject?: string | undefined;
  defaultCurrency: string;
  now: Date;
  maxLifetimeDays: number;
  /** Merchant's IANA time zone: an expiry date means the end of that day there. */
  timeZone?: string | undefined;
}

export interface ParsedOrderMail {
  draft?: OrderDraft;
  problems: FieldProblem[];
  /** The body the line numbers refer to ('html' when it was converted from the HTML part). */
  body: 'text' | 'html' | 'none';
}

interface Found {
  value: string;
  line: number;
}

/** Attribution verbs of reply headers, folded ("On …, X wrote:", "Il giorno … ha scritto:", …). */
const REPLY_VERBS = ['wrote:', 'ha scritto:', 'a ecrit:', 'a ecrit :', 'escribio:', 'schrieb:'];
const REPLY_INTRO = /^(on|il|le|am|el) /;

/** A reply header, possibly wrapped so that its verb sits alone on the next line. */
function isReplyHeader(folded: string, previous: string): boolean {
  const verb = REPLY_VERBS.some((v) => folded === v || folded.endsWith(` ${v}`));
  // German puts the name after the verb: "Am 1. März 2026 um 18:00 schrieb Mario <m@x.de>:".
  const german = folded.endsWith(':') && (folded.includes(' schrieb ') || folded.startsWith('schrieb '));
  if (!verb && !german) return false;
  return REPLY_INTRO.test(folded) || REPLY_INTRO.test(previous) || folded === 'wrote:';
}

/**
 * Lines after which nothing belongs to the order: signature, forwarded originals, reply history.
 * `previous` is the start of the previous line, lower-cased (a reply header may wrap).
 */
function isStopLine(trimmed: string, previous: string): boolean {
  // "-- " is the standard signature delimiter; the trailing space is often lost on the way.
  if (trimmed === '--') return true;
  if (trimmed.startsWith('__________') && /^_+$/.test(trimmed)) return true;
  if (trimmed.startsWith('-----')) return /original|origine|ursprungliche/.test(fold(trimmed));
  // Folding costs; only lines that end like a reply header pay for it.
  return trimmed.endsWith(':') && isReplyHeader(fold(trimmed), fold(previous));
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

export function parseOrderMail(input: ParseOrderMailInput): ParsedOrderMail {
  const { text, body } = bodyOf(input);
  const problems: FieldProblem[] = [];
  const found = new Map<OrderField, Found>();
  const problem = (field: OrderField, code: string, message: string, at?: Found) =>
    problems.push({ field, code, message, ...(at ? { value: at.value, line: at.line } : {}) });

  const lines = text.split(/\r\n|\n|\r/);
  let previous = '';
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('>')) continue;
    if (isStopLine(trimmed, previous)) break;
    previous = trimmed.slice(0, 8);
    const hit = labelled(trimmed);
    if (!hit) continue;
    const at = { value: hit.value, line: i + 1 };
    const first = found.get(hit.field);
    if (!first) {
      found.set(hit.field, at);
    } else if (first.value !== at.value && sameText(first.value) !== sameText(at.value)) {
      problem(hit.field, 'ORDER_FIELD_DUPLICATE', `given twice with different values (first on line ${first.line}: "${first.value}")`, at);
    }
  }

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
      ...(amount ? { value: '', line: amount.line } : {}),
    });
  } else {
    const r = parseAmount(amount.value, input.defaultCurrency, explicitCurrency);
    if (r.ok) {
      draft.amountMinor = r.money.amountMinor;
      draft.currency = r.money.currency;
    } else {
      problems.push({ ...r.problem, field: 'amount', value: amount.value, line: amount.line });
    }
  }

  const reference = get('reference');
  if (reference) {
    if (reference.value.length > MAX.reference || /[\u0000-\u001f<>]/.test(reference.value)) {
      problem('reference', 'ORDER_REFERENCE_INVALID', `expected at most ${MAX.reference} characters, without < or >`, reference);
    } else draft.reference = reference.value;
  }

  const description = get('description');
  const fallback = input.subject ? stripSubjectPrefixes(input.subject) : '';
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
    const r = parseExpiry(expiry.value, { now: input.now, maxLifetimeDays: input.maxLifetimeDays, timeZone: input.timeZone });
    if (r.ok) draft.expiresAt = r.expiresAt;
    else problem('expiry', r.code, r.message, expiry);
  }

  const delivery = get('delivery');
  if (delivery) {
    const mode = DELIVERY_MODE.get(labelKey(delivery.value));
    if (mode) draft.delivery = mode;
    else problem('delivery', 'ORDER_DELIVERY_UNKNOWN', 'expected merchant (the link comes to you) or customer (straight to the customer)', delivery);
  }

  problems.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  if (problems.length > 0 || draft.amountMinor === undefined || draft.currency === undefined) return { problems, body };
  return { draft: draft as OrderDraft, problems, body };
}
