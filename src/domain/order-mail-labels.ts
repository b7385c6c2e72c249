// The words of order mails: the field labels, languages, delivery modes and currency symbols in
// English, Italian, French, German and Spanish, compared folded (case and accents), the parser's
// problem codes, and the reading of one "Label: value" line (src/domain/order-mail.ts).
export type OrderField =
  | 'amount'
  | 'currency'
  | 'reference'
  | 'description'
  | 'customerName'
  | 'customerEmail'
  | 'language'
  | 'expiry'
  | 'delivery'
  | 'reminders'
  | 'deposit'
  | 'balanceDue'
  | 'instalments';

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
  'ORDER_REMINDERS_INVALID',
  // Payment plans (src/domain/payment-plan.ts): parseDeposit, parseInstalments, parseBalanceDue, planParts.
  'DEPOSIT_INVALID',
  'DEPOSIT_CURRENCY_MISMATCH',
  'DEPOSIT_NOT_LESS_THAN_TOTAL',
  'BALANCE_DUE_INVALID',
  'BALANCE_DUE_PAST',
  'BALANCE_WITHOUT_DEPOSIT',
  'INSTALMENTS_INVALID',
  'INSTALMENTS_COUNT',
  'INSTALMENTS_TOO_SMALL',
  'PLAN_CONFLICT',
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
export const LABEL_FIELD = wordMap<OrderField>([
  ['amount', 'amount amountdue totalamount total sum price importo importototale totale somma prezzo montant montanttotal somme prix betrag gesamtbetrag summe preis importe importetotal monto precio'],
  ['currency', 'currency valuta divisa devise monnaie wahrung moneda'],
  ['reference', 'reference ref orderref order orderid ordernumber orderno riferimento rif ordine numeroordine nordine commande numerodecommande referenz bestellung bestellnummer referencia pedido numerodepedido'],
  ['description', 'description desc details descrizione causale dettagli libelle objet beschreibung verwendungszweck descripcion concepto'],
  ['customerName', 'customer customername name fullname cliente nomecliente nome client nomduclient nom kunde kundenname nombre nombredelcliente'],
  ['customerEmail', 'email mail emailaddress customeremail customermail emailcliente mailcliente indirizzoemail courriel emailclient emailduclient adresseemail kundenemail emailkunde correo correoelectronico emaildelcliente'],
  ['language', 'language lang locale lingua langue sprache idioma'],
  ['expiry', 'expiry expires expiration expirydate expiresin validfor validuntil lifetime scadenza validita validoper validofino datadiscadenza valablejusquau validite gultigbis gultigkeit ablauf ablaufdatum caducidad vencimiento validohasta'],
  ['delivery', 'delivery sendto deliverto invio inviaa destinatario envoi envoyera zustellung sendenan versand envio enviara'],
  ['reminders', 'reminders reminder promemoria promemorie solleciti sollecito rappels rappel relances erinnerungen erinnerung recordatorios recordatorio'],
  // Payment plans (issue 13 part 1). "Saldo" alone is no label: it also means an account's balance.
  ['deposit', 'deposit downpayment acconto caparra anticipo acompte arrhes anzahlung deposito senal'],
  ['balanceDue', 'balancedue balancedate balanceon balancepaymentdue saldoentro saldoil scadenzasaldo datasaldo soldele soldedu datedusolde soldeau restzahlungam restzahlung restbetragfallig restbetragfalligam saldoel fechadelsaldo fechasaldo saldoantesdel'],
  // Not the bare Italian "Rate": hotels write "Rate: 120 EUR per night" (the room rate).
  ['instalments', 'instalments installments instalment installment rateizzazione numerorate pagamentoarate versements echeances echeancier raten ratenzahlung cuotas plazos'],
]);

export const LANGUAGE_CODE = wordMap([
  ['en', 'en eng english inglese anglais englisch ingles'],
  ['it', 'it ita italian italiano italien italienisch'],
  ['fr', 'fr fra fre french francese francais franzosisch frances'],
  ['de', 'de deu ger german tedesco allemand deutsch aleman'],
  ['es', 'es spa spanish spagnolo espagnol spanisch espanol castellano'],
]);

export const DELIVERY_MODE = wordMap<'merchant' | 'customer'>([
  ['merchant', 'merchant me tome myself shop store seller esercente negozio venditore ame commercant marchand vendeur moi amoi handler mir anmich verkaufer comerciante tienda vendedor ami'],
  ['customer', 'customer client buyer directly cliente alcliente acquirente compratore aucliente acheteur kunde ankunde kaufer comprador'],
]);

export const CURRENCY_SYMBOLS: Record<string, string> = { '€': 'EUR', $: 'USD', US$: 'USD', '£': 'GBP', '¥': 'JPY', Fr: 'CHF' };

/** The field a label names (any of the five languages, any case or accents), if any. */
export function fieldForLabel(label: string): OrderField | undefined {
  return LABEL_FIELD.get(labelKey(label));
}

/** A value and where it was given: a line of a mail or a row of a batch. */
export interface FieldValue {
  value: string;
  line?: number;
  row?: number;
}

export const at = (v: FieldValue) => ({ value: v.value, ...(v.line !== undefined ? { line: v.line } : {}), ...(v.row !== undefined ? { row: v.row } : {}) });

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
export function labelled(line: string): { field: OrderField; value: string } | undefined {
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
