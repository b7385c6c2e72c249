// Signed payment proof carried by every receipt: anyone holding the service's public key (served
// at /.well-known/paymail-receipt-keys.json) can check that paymail issued it and that no field
// was changed. Token: base64url(payload JSON) "." base64url(Ed25519 signature) "." key id.
// The signature covers the exact payload bytes, so verification never re-serialises JSON.
// Ed25519 is deterministic: the same order signed with the same key always gives the same token,
// so the mail and the receipt page show one token without storing it.
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
  | { ok: false; reason: 'malformed' | 'unknown-key' | 'invalid-signature' };

const B64URL = /^[A-Za-z0-9_-]+$/;
const KID = /^[A-Za-z0-9_-]{1,64}$/;
/** Base64url of '{"' is "eyJ": lets us find a token in a mail, a page or pasted text. */
export const RECEIPT_TOKEN_PATTERN = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{86}\.[A-Za-z0-9_-]{1,64}/;
const MAX_TOKEN_LENGTH = 4096;

/** RFC 7638 thumbprint of an Ed25519 public key, shortened: a stable key id on every instance. */
export function receiptKeyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string };
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/** The public JWK published for a key (OKP / Ed25519). */
export function publicJwk(kid: string, key: KeyObject): Record<string, string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as { crv: string; kty: string; x: string };
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' };
}

export function signReceipt(claims: ReceiptClaims, key: ReceiptSigningKey): string {
  const payload = Buffer.from(JSON.stringify(ReceiptClaimsSchema.parse(claims)), 'utf8');
  const signature = sign(null, payload, key.privateKey);
  return `${payload.toString('base64url')}.${signature.toString('base64url')}.${key.kid}`;
}

/** Checks structure, key id, signature (over the payload bytes), then the payload's shape. */
export function verifyReceiptToken(token: string, lookup: ReceiptKeyLookup): ReceiptVerification {
  const raw = token.trim();
  if (raw.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = raw.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [p, s, kid] = parts as [string, string, string];
  if (!B64URL.test(p) || !B64URL.test(s) || !KID.test(kid)) return { ok: false, reason: 'malformed' };
  const payload = Buffer.from(p, 'base64url');
  const signature = Buffer.from(s, 'base64url');
  if (signature.length !== 64) return { ok: false, reason: 'malformed' };
  const key = lookup(kid);
  if (!key) return { ok: false, reason: 'unknown-key' };
  let good = false;
  try {
    good = verify(null, payload, key, signature);
  } catch {
    good = false;
  }
  if (!good) return { ok: false, reason: 'invalid-signature' };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const claims = ReceiptClaimsSchema.safeParse(json);
  // Signed by us but not a shape we know (a future version): not a proof this code can vouch for.
  if (!claims.success) return { ok: false, reason: 'malformed' };
  return { ok: true, kid, claims: claims.data };
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
