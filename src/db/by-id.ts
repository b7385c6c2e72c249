// Conditional single-document writes as a primary-key read plus a write by _id alone.
//
// FerretDB v1.24 (SQLite) pushes a filter down to SQL only when it is exactly `{_id: X}`; a filter
// such as `{_id: X, status: 'pending'}` reads and decodes the whole collection (seen in its debug
// log; 70% of its CPU in a flood). Its conditional updates are not atomic either (src/db/claims.ts),
// so the precondition loses nothing by being checked here: the claims referee concurrency.
import { type Model } from 'mongoose';

/**
 * Applies `update` to the document `id` when `cond` holds for its current state; returns the
 * updated document, or null when it is missing or the condition does not hold.
 */
export async function updateByIdIf<T>(
  model: Model<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  id: unknown,
  cond: (current: T) => boolean,
  update: Record<string, unknown>,
): Promise<T | null> {
  const current = await model.findById(id).lean<T>();
  if (!current || !cond(current)) return null;
  return model.findOneAndUpdate({ _id: id }, update, { returnDocument: 'after' }).lean<T>();
}
