// Reading a long cursor ahead: the next batch is asked for as soon as the current one is taken
// from the driver, so the database prepares batch k+1 while the caller works through batch k.
// `for await` on a driver cursor asks for the next batch only when the current one is used up:
// the database and the caller then take turns, each idle while the other works. The daily recap's
// read of a group's orders spends about as long aggregating in Node as the database spends
// finding and encoding the orders, so the two overlap instead of adding up.
import { type AbstractCursor } from 'mongodb';

/**
 * The cursor's documents, in order, one batch read ahead. Closes the cursor when the caller stops
 * early; a failed read is thrown where the caller would have met it.
 */
export async function* readAhead<T>(cursor: AbstractCursor<T>): AsyncGenerator<T, void, undefined> {
  let ahead: Promise<boolean> | undefined;
  try {
    for (;;) {
      // Buffered documents first: the driver reports no next document once the server closed the
      // cursor, even while its last batch is still buffered.
      if (cursor.bufferedCount() === 0) {
        const more = await (ahead ?? cursor.hasNext());
        ahead = undefined;
        if (!more && cursor.bufferedCount() === 0) return;
      }
      const batch = cursor.readBufferedDocuments();
      ahead = cursor.hasNext();
      // Its failure is the caller's when it gets there; until then, not an unhandled rejection.
      ahead.catch(() => {});
      for (const doc of batch) yield doc;
    }
  } finally {
    if (ahead) await ahead.catch(() => {});
    // A batch read ahead and not wanted goes with the cursor (closed: killCursors on the server).
    cursor.readBufferedDocuments();
    await cursor.close();
  }
}
