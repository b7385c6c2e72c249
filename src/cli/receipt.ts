// `paymail receipt verify <file or token> [--keys <JWKS file or URL>] [--json]`
// Checks a signed payment proof: given as a token, or found in a file (a saved receipt .eml, a
// page, any text). Keys: --keys (e.g. https://pay.example.com/.well-known/paymail-receipt-keys.json)
// or else this installation's own (RECEIPT_SIGNING_KEY[_FILE], RECEIPT_PUBLIC_KEYS_FILE, DATA_DIR).
// Exit 0 and the verified fields; 1 with "invalid signature", "malformed …" or "unknown signing
// key"; 2 on a usage error. No database needed.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { simpleParser } from 'mailparser';
import { loadConfig } from '../config.ts';
import { brandName, maskCard } from '../domain/card.ts';
import { formatMoney } from '../domain/money.ts';
import { extractReceiptToken, RECEIPT_TOKEN_PATTERN, verifyReceiptToken } from '../domain/receipt-proof.ts';
import { createReceiptKeyRing, loadReceiptKeys, publicKeysFromJwks, type ReceiptKeyRing } from '../services/signing-keys.ts';

export const RECEIPT_USAGE = '  paymail receipt verify <file or token> [--keys <JWKS file or URL>] [--json]';

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const REASONS = {
  malformed: 'malformed receipt token',
  'unknown-key': 'unknown signing key',
  'invalid-signature': 'invalid signature',
} as const;

/** A mail is parsed (decoding quoted-printable, base64, charsets) before looking for the token. */
async function tokenFromFile(file: string): Promise<string | undefined> {
  const raw = await readFile(file);
  const text = raw.toString('utf8');
  const direct = extractReceiptToken(text);
  if (direct) return direct;
  if (/^[\w-]+:/m.test(text.slice(0, 2000))) {
    const mail = await simpleParser(raw);
    return extractReceiptToken(`${mail.text ?? ''}\n${typeof mail.html === 'string' ? mail.html : ''}`);
  }
  return undefined;
}

async function keyRing(source: string | undefined): Promise<ReceiptKeyRing> {
  if (!source) return loadReceiptKeys(loadConfig(), { create: false });
  const json = /^https?:\/\//.test(source)
    ? await (await fetch(source, { signal: AbortSignal.timeout(10_000) })).json()
    : JSON.parse(await readFile(source, 'utf8'));
  return createReceiptKeyRing(undefined, publicKeysFromJwks(json, source));
}

export async function runReceiptCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  let positionals: string[];
  let values: { keys?: string | undefined; json?: boolean | undefined };
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: true,
      options: { keys: { type: 'string' }, json: { type: 'boolean' } },
    }));
  } catch (e) {
    io.err(`paymail: ${(e as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  if (command !== 'verify' || positionals.length !== 1) {
    io.err(`usage:\n${RECEIPT_USAGE}\n`);
    return 2;
  }
  const input = positionals[0]!;
  const whole = new RegExp(`^${RECEIPT_TOKEN_PATTERN.source}$`);
  const token = whole.test(input.trim())
    ? input.trim()
    : existsSync(input)
      ? await tokenFromFile(input)
      : extractReceiptToken(input);
  if (!token) {
    io.err(`paymail: malformed: no receipt token found in ${existsSync(input) ? input : 'the argument'}\n`);
    return 1;
  }
  const ring = await keyRing(values.keys);
  const v = verifyReceiptToken(token, ring.lookup);
  if (!v.ok) {
    io.err(`paymail: ${REASONS[v.reason]}${v.reason === 'unknown-key' && v.kid ? ` (key id ${v.kid})` : ''}\n`);
    return 1;
  }
  const c = v.claims;
  if (values.json) {
    io.out(`${JSON.stringify({ valid: true, kid: v.kid, ...c }, null, 2)}\n`);
    return 0;
  }
  io.out(
    [
      `valid signature (key ${v.kid})`,
      `  receipt:   ${c.receiptNumber}`,
      `  merchant:  ${c.merchant.name} (${c.merchant.id})`,
      `  reference: ${c.reference}`,
      `  amount:    ${formatMoney(c.amountMinor, c.currency, 'en')} (${c.amountMinor} ${c.currency} minor units)`,
      `  card:      ${maskCard(brandName(c.card.brand), c.card.last4).trim()}`,
      `  auth code: ${c.authCode}`,
      `  paid at:   ${c.paidAt}`,
      `  order:     ${c.orderPublicId}`,
      '',
    ].join('\n'),
  );
  return 0;
}
