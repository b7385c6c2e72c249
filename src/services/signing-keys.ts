// The service's Ed25519 key for signed payment proofs (src/domain/receipt-proof.ts).
// Production: RECEIPT_SIGNING_KEY (PKCS#8 PEM) or RECEIPT_SIGNING_KEY_FILE; retired keys stay
// verifiable through RECEIPT_PUBLIC_KEYS_FILE (a JWKS). Development: a key is generated once
// into DATA_DIR/keys/receipt-ed25519.pem so receipts keep verifying across restarts.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config } from '../config.ts';
import { AppError } from '../domain/errors.ts';
import { LEGACY_KID_LENGTH, publicJwk, receiptKeyId, type ReceiptKeyLookup, type ReceiptSigningKey } from '../domain/receipt-proof.ts';

export interface ReceiptKeyRing {
  /** Absent in a verify-only ring (e.g. the CLI given a published JWKS). */
  readonly signing: ReceiptSigningKey | undefined;
  readonly lookup: ReceiptKeyLookup;
  /** What /.well-known/paymail-receipt-keys.json serves: every verifying key, signing key first. */
  jwks(): { keys: Array<Record<string, string>> };
}

export type ReceiptKeyConfig = Pick<Config, 'dataDir' | 'production' | 'receiptSigningKey' | 'receiptSigningKeyFile' | 'receiptPublicKeysFile'>;

export const DEV_KEY_FILE = 'receipt-ed25519.pem';

export function createReceiptKeyRing(signingKey: KeyObject | undefined, publicKeys: Iterable<[string, KeyObject]> = []): ReceiptKeyRing {
  // Keys by their RFC 7638 thumbprint (what new proofs and the JWKS name), plus aliases: the
  // 16-character key ids of proofs issued before, and any other kid a retired-keys file gave.
  const keys = new Map<string, KeyObject>();
  const aliases = new Map<string, string>();
  const add = (key: KeyObject, declared?: string): string => {
    const kid = receiptKeyId(key);
    if (!keys.has(kid)) keys.set(kid, key);
    for (const alias of [kid.slice(0, LEGACY_KID_LENGTH), declared]) if (alias && alias !== kid && !aliases.has(alias)) aliases.set(alias, kid);
    return kid;
  };
  let signing: ReceiptSigningKey | undefined;
  if (signingKey) signing = { kid: add(createPublicKey(signingKey)), privateKey: signingKey };
  for (const [kid, key] of publicKeys) add(key, kid);
  return {
    signing,
    lookup: (kid) => keys.get(kid) ?? keys.get(aliases.get(kid) ?? ''),
    jwks: () => ({ keys: [...keys].map(([kid, key]) => publicJwk(kid, key)) }),
  };
}

function parsePrivateKey(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    // Env vars often carry PEMs with literal "\n".
    key = createPrivateKey(pem.includes('-----BEGIN') ? pem.replace(/\\n/g, '\n') : pem);
  } catch (e) {
    throw new AppError('RECEIPT_KEY_INVALID', `${where}: not a PEM private key (${(e as Error).message.split('\n')[0]})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AppError('RECEIPT_KEY_INVALID', `${where}: expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return key;
}

/** Public keys from a JWKS document (OKP / Ed25519 entries with a kid; others are skipped). */
export function publicKeysFromJwks(doc: unknown, where = 'JWKS'): Array<[string, KeyObject]> {
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new AppError('RECEIPT_KEY_INVALID', `${where}: expected {"keys": [...]}`);
  const out: Array<[string, KeyObject]> = [];
  for (const k of keys as Array<Record<string, unknown>>) {
    if (k?.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
    out.push([k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' })]);
  }
  return out;
}

/**
 * Loads the key ring from the configuration. In development, generates the key on first use
 * unless `create` is false (the CLI verifying a receipt must not invent a key that signed nothing).
 */
export async function loadReceiptKeys(config: ReceiptKeyConfig, opts: { create?: boolean } = {}): Promise<ReceiptKeyRing> {
  const retired = config.receiptPublicKeysFile
    ? publicKeysFromJwks(JSON.parse(await readFile(config.receiptPublicKeysFile, 'utf8')), 'RECEIPT_PUBLIC_KEYS_FILE')
    : [];
  if (config.receiptSigningKey) return createReceiptKeyRing(parsePrivateKey(config.receiptSigningKey, 'RECEIPT_SIGNING_KEY'), retired);
  if (config.receiptSigningKeyFile) {
    const pem = await readFile(config.receiptSigningKeyFile, 'utf8');
    return createReceiptKeyRing(parsePrivateKey(pem, 'RECEIPT_SIGNING_KEY_FILE'), retired);
  }
  if (config.production) {
    throw new AppError('RECEIPT_KEY_MISSING', 'RECEIPT_SIGNING_KEY or RECEIPT_SIGNING_KEY_FILE is required in production');
  }
  const dir = path.join(config.dataDir, 'keys');
  const file = path.join(dir, DEV_KEY_FILE);
  if (existsSync(file)) return createReceiptKeyRing(parsePrivateKey(await readFile(file, 'utf8'), file), retired);
  if (opts.create === false) return createReceiptKeyRing(undefined, retired);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  // 'wx': two instances starting together must not overwrite each other's key.
  await writeFile(file, pem, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return createReceiptKeyRing(parsePrivateKey(await readFile(file, 'utf8'), file), retired);
}
