// Signed payment proof carried by every receipt: anyone holding the service's public key (served
// at /.well-known/paymail-receipt-keys.json) can check that paymail issued it and that no field
// was changed. A proof is a compact JWS (RFC 7515) signed with EdDSA/Ed25519 (RFC 8037): header
// {"alg":"EdDSA","kid":<RFC 7638 thumbprint of the key>}, payload the claims below as JSON, so any
// JOSE library verifies it with the published JWK Set. Ed25519 is deterministic: the same order
// signed with the same key always gives the same token, so the mail and the receipt page show one
// token without storing it.
//
// Proofs issued before (still in customers' mailboxes) had their own layout: base64url(payload)
// "." base64url(Ed25519 signature over the payload bytes) "." the first 16 characters of the
// thumbprint. They keep verifying here; new ones are never issued in it.
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

export const RECEIPT_PROOF_VERSION = 1;

/** The signed fields. Money in minor units; the card is masked (brand and last four only). */
export const ReceiptClaimsSchema = z.object({
  v: z.literal(RECEIPT_PROOF_VERSION),
  receiptNumber: z.string().min(1),
  merchant: z.object({ id: z.string().min(1), name: z.string() }),
  reference: z.string(),
  amountMinor: z.number().int(),
  currency: z.string().regex(/^[A-Z]{3}$/),
  card: z.object({ brand: z.string(), last4: z.string().regex(/^\d{4}$/) }),
  authCode: z.string(),
  paidAt: z.iso.datetime(),
  orderPublicId: z.string().min(1),
});
export type ReceiptClaims = z.infer<typeof ReceiptClaimsSchema>;

export interface ReceiptSigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** Public keys by key id: every key that ever signed stays here so old receipts keep verifying. */
export type ReceiptKeyLookup = (kid: string) => KeyObject | undefined;

export type ReceiptVerification =
  | { ok: true; kid: string; claims: ReceiptClaims }
  | { ok: false; reason: 'malformed' | 'unknown-key' | 'invalid-signature'; kid?: string };

const B64URL = /^[A-Za-z0-9_-]+$/;
const KID = /^[A-Za-z0-9_-]{1,64}$/;
const B = '[A-Za-z0-9_-]';
/**
 * Finds a token in a mail, a page or pasted text: a compact JWS whose header and payload are JSON
 * objects (base64url of '{"' is "eyJ"), or a proof in the earlier layout.
 */
export const RECEIPT_TOKEN_PATTERN = new RegExp(
  `(?<!${B})(?:eyJ${B}{10,}\\.eyJ${B}{20,}\\.${B}{86}(?!${B})|eyJ${B}{20,}\\.${B}{86}\\.${B}{1,64})`,
);
const MAX_TOKEN_LENGTH = 4096;
const ED25519_SIGNATURE_CHARS = 86; // 64 bytes
/** Key ids of the earlier proof layout: the thumbprint cut to 16 characters. */
export const LEGACY_KID_LENGTH = 16;

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key: its key id. */
export function receiptKeyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string };
  // The required members in lexicographic order, no whitespace (RFC 7638 §3.2, RFC 8037 §2).
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The public JWK published for a key (OKP / Ed25519). */
export function publicJwk(kid: string, key: KeyObject): Record<string, string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as { crv: string; kty: string; x: string };
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' };
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

export function signReceipt(claims: ReceiptClaims, key: ReceiptSigningKey): string {
  const header = b64(JSON.stringify({ alg: 'EdDSA', kid: key.kid }));
  const payload = b64(JSON.stringify(ReceiptClaimsSchema.parse(claims)));
  const input = `${header}.${payload}`;
  return `${input}.${sign(null, Buffer.from(input, 'ascii'), key.privateKey).toString('base64url')}`;
}

/**
 * Base64url in its one canonical spelling (no padding, unused low bits zero): decoding ignores
 * those bits, so without this check one signature would have several valid spellings.
 */
function decodeCanonical(s: string): Buffer | undefined {
  if (!B64URL.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64url');
  return bytes.toString('base64url') === s ? bytes : undefined;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

type Parsed = { kid: string; signingInput: Buffer; signature: Buffer; payload: Buffer } | { reason: 'malformed' };

/** Compact JWS: the protected header must say EdDSA, name a key, and ask for no extension. */
function parseJws(h: string, p: string, s: string): Parsed {
  const header = decodeCanonical(h);
  const payload = decodeCanonical(p);
  const signature = decodeCanonical(s);
  if (!header || !payload || !signature || signature.length !== 64) return { reason: 'malformed' };
  const json = parseJson(header) as Record<string, unknown> | undefined;
  if (!json || typeof json !== 'object' || Array.isArray(json)) return { reason: 'malformed' };
  // alg pinned (never "none", never an HMAC keyed with the public key); crit: no extension is
  // understood here, so a header that requires one cannot be honoured (RFC 7515 §4.1.11).
  if (json['alg'] !== 'EdDSA' || typeof json['kid'] !== 'string' || !KID.test(json['kid']) || 'crit' in json) return { reason: 'malformed' };
  return { kid: json['kid'], signingInput: Buffer.from(`${h}.${p}`, 'ascii'), signature, payload };
}

/** The earlier layout: payload "." signature over the payload bytes "." key id. */
function parseLegacy(p: string, s: string, kid: string): Parsed {
  const payload = decodeCanonical(p);
  const signature = decodeCanonical(s);
  if (!payload || !signature || signature.length !== 64 || !KID.test(kid)) return { reason: 'malformed' };
  return { kid, signingInput: payload, signature, payload };
}

/** Checks structure, key id, signature (over the exact bytes signed), then the payload's shape. */
export function verifyReceiptToken(token: string, lookup: ReceiptKeyLookup): ReceiptVerification {
  const raw = token.trim();
  if (raw.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = raw.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [a, b, c] = parts as [string, string, string];
  // A JWS ends with the 86-character signature; the earlier layout ends with a short key id.
  const parsed = c.length === ED25519_SIGNATURE_CHARS ? parseJws(a, b, c) : parseLegacy(a, b, c);
  if ('reason' in parsed) return { ok: false, reason: parsed.reason };
  const key = lookup(parsed.kid);
  if (!key) return { ok: false, reason: 'unknown-key', kid: parsed.kid };
  let good = false;
  try {
    good = verify(null, parsed.signingInput, key, parsed.signature);
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: 'invalid-signature' };
  const claims = ReceiptClaimsSchema.safeParse(parseJson(parsed.payload));
  // Signed by us but not a shape we know (a future version): not a proof this code can vouch for.
  if (!claims.success) return { ok: false, reason: 'malformed' };
  return { ok: true, kid: parsed.kid, claims: claims.data };
}

/**
 * Finds a token in free text: a pasted token, a receipt mail (.eml) or a saved page. Undoes what
 * transports do to long lines first (quoted-printable soft breaks, `=3D`), and HTML entities.
 */
export function extractReceiptToken(text: string): string | undefined {
  // Unwrap first: a wrapped token's tail may itself start with "eyJ" and look like a token.
  const unwrapped = text
    .replace(/=\r?\n/g, '')
    .replace(/=3D/gi, '=')
    .replace(/&#x3D;|&#61;/gi, '=');
  return RECEIPT_TOKEN_PATTERN.exec(unwrapped)?.[0];
}
