// Acquirer secrets (a merchant's Stripe secret key and webhook signing secret) encrypted at rest:
// AES-256-GCM under SECRETS_KEY, a fresh 96-bit IV per value, and the merchant id and field name
// as additional data, so a ciphertext copied to another merchant or field does not decrypt.
// Stored form: `v1.<iv>.<ciphertext>.<tag>` (base64url). Pure: the key comes from the caller.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

/** Parses SECRETS_KEY: 32 bytes as 64 hex digits or as base64/base64url (44/43 characters). */
export function parseSecretsKey(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return b.length === 32 ? b : undefined;
  }
  return undefined;
}

/** Where a secret belongs: part of the authenticated data, so it decrypts only there. */
export interface SecretContext {
  merchantId: string;
  field: string;
}

const aad = (c: SecretContext) => Buffer.from(`paymail:${c.merchantId}:${c.field}`, 'utf8');

export function sealSecret(key: Buffer, plain: string, context: SecretContext): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(context));
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** Throws SecretBoxError when the value was not sealed with this key for this context. */
export function openSecret(key: Buffer, sealed: string, context: SecretContext): string {
  const [version, iv, ct, tag] = sealed.split('.');
  if (version !== VERSION || !iv || ct === undefined || !tag) throw new SecretBoxError('not a sealed secret');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(aad(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretBoxError(`the ${context.field} of merchant ${context.merchantId} does not decrypt with SECRETS_KEY (another key, or altered)`);
  }
}

/** What may be shown of a secret: its prefix and last four (`sk_test_…4242`, `whsec_…abcd`). */
export function secretHint(secret: string): string {
  const prefix = /^(sk|rk|whsec)_(test_|live_)?/.exec(secret)?.[0] ?? '';
  return `${prefix}…${secret.slice(-4)}`;
}
