// API keys of the server API (issue 12 part 2): created for a merchant by the operator's CLI or
// the merchant's admin in the back office, shown once, stored as a SHA-256 hash, revocable, and
// optionally read-only. A key is `pm_<16>_<32>` (base62): the first part names its record
// (`ak_<16>`), so checking a key is one primary-key read and a constant-time hash comparison.
import { createHash, timingSafeEqual } from 'node:crypto';
import { customAlphabet } from 'nanoid';
import { type ApiKeyDoc } from '../db/api-keys.repository.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const idPart = customAlphabet(BASE62, 16);
const secretPart = customAlphabet(BASE62, 32);
const KEY_FORMAT = /^pm_([0-9A-Za-z]{16})_[0-9A-Za-z]{32}$/;
const LABEL_MAX = 80;

export interface ApiKeyServiceDeps {
  repos: Repositories;
  now?: () => Date;
}

/** An API key as listed (never the key or its hash). */
export interface ApiKeyRow {
  id: string;
  merchantId: string;
  /** The key's first characters, e.g. `pm_AbCdEfGh…`. */
  hint: string;
  label?: string | undefined;
  readOnly: boolean;
  revoked: boolean;
  createdAt: Date;
  revokedAt?: Date | undefined;
  createdBy?: string | undefined;
}

/** Who is calling: the key and its merchant. */
export interface ApiCaller {
  key: ApiKeyRow;
  merchant: MerchantDoc;
}

const hashOf = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

const rowOf = (k: ApiKeyDoc): ApiKeyRow => ({
  id: k._id,
  merchantId: k.merchantId,
  hint: k.hint,
  ...(k.label ? { label: k.label } : {}),
  readOnly: k.readOnly,
  revoked: k.revoked,
  createdAt: k.createdAt,
  ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}),
  ...(k.createdBy ? { createdBy: k.createdBy } : {}),
});

const invalidKey = () => new AppError('API_KEY_INVALID', 'missing, unknown or revoked API key', { httpStatus: 401 });

export function createApiKeyService(deps: ApiKeyServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const { apiKeys, merchants } = deps.repos;

  /** A new key for `merchantId`; the key is returned only here (paymail keeps its hash). */
  async function create(merchantId: string, opts: { readOnly?: boolean; label?: string | undefined; createdBy?: string } = {}): Promise<{ id: string; key: string; row: ApiKeyRow }> {
    const merchant = await merchants.findById(merchantId);
    if (!merchant) throw new AppError('MERCHANT_NOT_FOUND', `no merchant ${merchantId}`, { httpStatus: 404 });
    const label = opts.label?.trim().slice(0, LABEL_MAX) || undefined;
    const part = idPart();
    const key = `pm_${part}_${secretPart()}`;
    const doc = await apiKeys.insert({
      _id: `ak_${part}`,
      merchantId,
      hash: hashOf(key),
      hint: `${key.slice(0, 11)}…`,
      label,
      readOnly: opts.readOnly === true,
      createdBy: opts.createdBy,
    });
    return { id: doc._id, key, row: rowOf(doc) };
  }

  async function list(merchantId: string): Promise<ApiKeyRow[]> {
    return (await apiKeys.listByMerchant(merchantId)).map(rowOf);
  }

  /** Revokes a key: of `merchantId` (the back office), or of any merchant (`null`: the operator's CLI). */
  async function revoke(merchantId: string | null, keyId: string): Promise<ApiKeyRow> {
    const done = await apiKeys.revoke(merchantId, keyId, now());
    if (!done) throw new AppError('API_KEY_NOT_FOUND', `no API key ${keyId}`, { httpStatus: 404 });
    return rowOf(done);
  }

  /** The caller of an `Authorization: Bearer <key>` header; API_KEY_INVALID for anything else. */
  async function authenticate(authorization: string | undefined): Promise<ApiCaller> {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
    const key = m?.[1] ?? '';
    const id = KEY_FORMAT.exec(key)?.[1];
    if (!id) throw invalidKey();
    const doc = await apiKeys.byId(`ak_${id}`);
    // Compared in constant time even when the record is missing (the hash of the key itself).
    const expected = Buffer.from(doc?.hash ?? hashOf(`${key}-absent`), 'hex');
    const given = Buffer.from(hashOf(key), 'hex');
    if (!doc || !timingSafeEqual(expected, given) || doc.revoked) throw invalidKey();
    const merchant = await merchants.findById(doc.merchantId);
    if (!merchant) throw invalidKey();
    return { key: rowOf(doc), merchant };
  }

  return { create, list, revoke, authenticate };
}
export type ApiKeyService = ReturnType<typeof createApiKeyService>;
