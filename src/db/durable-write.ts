// Writes that record a fact the process already knows — the relay took a mail, a merchant's server
// acknowledged a webhook, a message was processed — must not be dropped because the database is
// away at that moment: the lease would run out and the work be done again (a second copy of the
// mail). So such a write is retried until the database answers. Only a crash of paymail itself in
// that window may repeat the work, and then always under the same Message-ID or event id.
//
// Only database unavailability is retried; any other error is thrown at once. The write must be
// idempotent (a write that was applied but whose answer was lost is retried too).
import { type Logger } from '../logger.ts';

/** Network trouble, no reachable server, or a server shutting down: the database is away. */
export function isDatabaseUnavailable(e: unknown): boolean {
  const err = e as { name?: unknown; code?: unknown; errorLabels?: unknown; errorLabelSet?: unknown };
  if (typeof err?.name === 'string' && /^Mongo(ose)?(Network|NetworkTimeout|ServerSelection|TopologyClosed|NotConnected|PoolCleared)Error$/.test(err.name)) {
    return true;
  }
  // The driver's own "retryable" server answers: shutting down, interrupted, not primary.
  return typeof err?.code === 'number' && [91, 189, 10107, 11600, 11602, 13435, 13436].includes(err.code);
}

export interface DurableWriteOptions {
  /** Warned at the first failed try and every 20th after it (an outage can last minutes). */
  log?: Pick<Logger, 'warn'>;
  /** What the process knows, for the warning, e.g. "mail sent". */
  what?: string;
  /** True once the process is shutting down: then only `graceMs` more of trying. */
  stopping?: () => boolean;
  graceMs?: number;
  /** First pause between tries, doubled up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
}

/** Runs `write` until it succeeds, retrying while the database is unavailable. */
export async function writeUntilStored<T>(write: () => Promise<T>, opts: DurableWriteOptions = {}): Promise<T> {
  const graceMs = opts.graceMs ?? 10_000;
  const maxDelay = opts.maxDelayMs ?? 5_000;
  let delay = opts.delayMs ?? 250;
  let stopSince: number | undefined;
  for (let tries = 1; ; tries++) {
    try {
      return await write();
    } catch (e) {
      if (!isDatabaseUnavailable(e)) throw e;
      if (opts.stopping?.()) {
        stopSince ??= Date.now();
        if (Date.now() - stopSince > graceMs) throw e;
      }
      if (tries === 1 || tries % 20 === 0) opts.log?.warn({ err: e, tries }, `${opts.what ?? 'work done'}, database unavailable: retrying the write`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(maxDelay, delay * 2);
    }
  }
}
