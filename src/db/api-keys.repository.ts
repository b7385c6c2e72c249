// The server API's aggregate: API keys, Idempotency-Key records and the per-key rate limit
// (src/db/models/api-key.model.ts). All database access for it; callers get it injected
// (src/db/repositories.ts).
//
// As elsewhere on FerretDB, inserts under a unique _id referee races (two requests with the same
// Idempotency-Key: one inserts, the other reads what the first stored), and the rate limit counts
// inserted documents, never counters ($inc is read-modify-write on FerretDB and loses increments).
import { nanoid } from 'nanoid';
import { ApiIdempotency, ApiKey, ApiRateHit, type ApiIdempotencyDoc, type ApiKeyDoc } from './models/api-key.model.ts';

export type { ApiIdempotencyDoc, ApiKeyDoc } from './models/api-key.model.ts';

const isDuplicate = (e: unknown) => (e as { code?: number }).code === 11000;

export interface NewApiKey {
  _id: string;
  merchantId: string;
  hash: string;
  hint: string;
  label?: string | undefined;
  readOnly: boolean;
  createdBy?: string | undefined;
}

export function createApiKeysRepository() {
  return {
    // ---- keys ----------------------------------------------------------------------------------

    async insert(doc: NewApiKey): Promise<ApiKeyDoc> {
      return (await ApiKey.create({ ...doc, revoked: false })).toObject() as ApiKeyDoc;
    },

    /** By primary key: the key names its record, so authentication is one look-up. */
    byId: (id: string) => ApiKey.findById(id).lean<ApiKeyDoc>(),

    /** The merchant's keys, newest first (revoked ones included). */
    listByMerchant: (merchantId: string) => ApiKey.find({ merchantId }).sort({ createdAt: -1 }).lean<ApiKeyDoc[]>(),

    /** Revokes a key of `merchantId` (any merchant's when null); the key, or null when there is none. */
    revoke: (merchantId: string | null, id: string, at: Date) =>
      ApiKey.findOneAndUpdate(
        { _id: id, ...(merchantId ? { merchantId } : {}) },
        { $set: { revoked: true, revokedAt: at } },
        { returnDocument: 'after' },
      ).lean<ApiKeyDoc>(),

    // ---- Idempotency-Key records ---------------------------------------------------------------

    /**
     * Takes `id` for a request being answered now: true when taken, else the record someone else
     * took (running, or done with its stored answer). Null when it vanished meanwhile (pruned).
     */
    async begin(id: string, merchantId: string, requestHash: string, at: Date): Promise<true | ApiIdempotencyDoc | null> {
      try {
        await ApiIdempotency.create({ _id: id, merchantId, requestHash, state: 'running', at });
        return true;
      } catch (e) {
        if (!isDuplicate(e)) throw e;
        return ApiIdempotency.findById(id).lean<ApiIdempotencyDoc>();
      }
    },

    idempotencyRecord: (id: string) => ApiIdempotency.findById(id).lean<ApiIdempotencyDoc>(),

    /** Stores the answer of the request that took `id`. */
    async finish(id: string, status: number, body: unknown, headers: Record<string, string> = {}): Promise<void> {
      await ApiIdempotency.updateOne({ _id: id, state: 'running' }, { $set: { state: 'done', status, body, headers } });
    },

    /**
     * Drops a record so the key can be used again: the taker's own after a server error, one left
     * running by a crash, or one past its 24 hours (only the record taken at `at`: a newer one stays).
     */
    async abandon(id: string, at: Date): Promise<void> {
      await ApiIdempotency.deleteOne({ _id: id, at });
    },

    /** Deletes records taken before `before` (past the 24 hours they answer for); how many. */
    async pruneIdempotency(before: Date): Promise<number> {
      return (await ApiIdempotency.deleteMany({ at: { $lt: before } })).deletedCount;
    },

    // ---- rate limit ----------------------------------------------------------------------------

    /**
     * Counts one request of `keyId` at `at` against `max` per `windowMs` (a sliding window shared
     * by every instance). Allowed: undefined. Refused: the milliseconds until a request is free
     * again (the refused request is not counted).
     */
    async hit(keyId: string, at: Date, max: number, windowMs: number): Promise<number | undefined> {
      const id = nanoid();
      await ApiRateHit.create({ _id: id, keyId, at });
      const since = new Date(at.getTime() - windowMs);
      const q = { keyId, at: { $gt: since } };
      const count = await ApiRateHit.countDocuments(q, { limit: max + 1 });
      if (count <= max) return undefined;
      await ApiRateHit.deleteOne({ _id: id });
      // The request that frees a place: the max-th newest leaves the window first.
      const [edge] = await ApiRateHit.find(q, { at: 1 }).sort({ at: -1 }).skip(max - 1).limit(1).lean<Array<{ at: Date }>>();
      return Math.max(1, (edge ? new Date(edge.at).getTime() + windowMs : at.getTime() + windowMs) - at.getTime());
    },

    /** Deletes rate-limit records older than `before`; how many. */
    async pruneRateHits(before: Date): Promise<number> {
      return (await ApiRateHit.deleteMany({ at: { $lt: before } })).deletedCount;
    },
  };
}

export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>;
