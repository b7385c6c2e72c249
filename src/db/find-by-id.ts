// A read of one document by primary key, sent as the one `find` command (filter on `_id`, limit 1,
// single batch) that the driver's findOne sends. findOne builds a cursor around that command, reads
// its first document and closes it; for an answer of at most one document that bookkeeping is
// about a tenth of the checkout page's CPU (bench P2), and the database sees the same request.
import { type Model } from 'mongoose';

interface FindReply<T> {
  cursor?: { firstBatch?: T[] };
}

/** The document of `model`'s collection whose `_id` is `id`, or null; plain data (no mongoose document). */
export async function findById<T>(model: Model<any>, id: string): Promise<T | null> {
  const db = model.db.db;
  const findOne = () => model.collection.findOne<T>({ _id: id as never });
  // Before the connection is open: the driver's own path (mongoose buffers it until then).
  if (!db) return findOne();
  let reply: FindReply<T>;
  try {
    reply = (await db.command({ find: model.collection.collectionName, filter: { _id: id }, limit: 1, singleBatch: true })) as FindReply<T>;
  } catch {
    // The driver retries a read that failed on a network error or a replica-set election once
    // (retryable reads); a command it sends as given is not retried. A read changes nothing, so it
    // is asked again the driver's way, with that retry; an error that is not transient fails there too.
    return findOne();
  }
  return reply.cursor?.firstBatch?.[0] ?? null;
}
