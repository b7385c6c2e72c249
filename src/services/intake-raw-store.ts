// Raw storage of inbound messages: `store` makes a message durable (raw chunks, then the small
// message document) before the door answers 250, and referees duplicate deliveries by the unique
// (merchant, message key). Processing is not started here (intake.service.ts does that).
import { createHash } from 'node:crypto';
import { AppError, isAppError } from '../domain/errors.ts';
import { withTimeout } from '../domain/with-timeout.ts';
import { rawChunkRanges, type EarlierMessage, type InboundRepository } from '../db/inbound.repository.ts';
import { type Logger } from '../logger.ts';
import { bodyHash, extractMessageId } from './intake-message-key.ts';

export interface StoreRequest {
  merchantId: string;
  door: 'submission' | 'mx';
  raw: Buffer;
  envelope: {
    mailFrom?: string | undefined;
    rcptTo: string[];
    remoteAddress?: string | undefined;
    /** MX door: the SPF/DKIM/DMARC/ARC summary that admitted the message (kept as is). */
    auth?: object | undefined;
  };
  /** A bounce delivered to the return path of outbox mail `mailId` (issue 13 part 8), not order mail. */
  bounce?: { mailId: string } | undefined;
}

export interface StoreResult {
  id: string;
  /** true when the same message (same merchant and Message-ID or bytes) was stored before. */
  duplicate: boolean;
}

export interface RawStoreOptions {
  inbound: InboundRepository;
  logger: Logger;
  now: () => Date;
  /** See IntakeServiceDeps (intake-deps.ts). */
  storeTimeoutMs: number;
  rawChunkBytes: number;
  bigMailPause: number;
  afterRawChunk?: ((n: number, count: number) => Promise<void> | void) | undefined;
}

export function createRawStore(opts: RawStoreOptions) {
  const { inbound, now, storeTimeoutMs, rawChunkBytes, bigMailPause } = opts;
  const log = opts.logger;
  /** Tail of the big-mail write lane: each chunk write starts after the previous one and its pause. */
  let lane: Promise<unknown> = Promise.resolve();
  /**
   * Runs `write` in the lane; its timeout starts when its turn comes, not while queued. The pause
   * holds the next writer, not this one: a mail's last chunk goes on to its 250 at once.
   */
  function inLane(write: () => Promise<void>): Promise<void> {
    let took = 0;
    const turn = lane.then(async () => {
      const started = performance.now();
      try {
        await withTimeout(write(), storeTimeoutMs);
      } finally {
        took = performance.now() - started;
      }
    });
    lane = turn
      .catch(() => {})
      .then(() => (bigMailPause > 0 ? new Promise((r) => setTimeout(r, took * bigMailPause)) : undefined));
    return turn;
  }

  async function storeRaw(req: StoreRequest): Promise<StoreResult> {
    // Mongoose would queue the write while disconnected; the sender is better served by a 451 now.
    // readyState stays 1 while the server is down: the driver's own view answers at once.
    if (!inbound.reachable()) {
      throw new AppError('INTAKE_STORE_UNAVAILABLE', 'the database is unavailable', { smtpCode: 451, httpStatus: 503 });
    }
    const messageId = extractMessageId(req.raw);
    const bodySha = bodyHash(req.raw);
    let messageKey = messageId ?? `sha256:${createHash('sha256').update(req.raw).digest('hex')}`;
    let result: StoreResult;
    // Raw bytes first (chunks `<id>:0…n-1`), then the small metadata document that makes the
    // message exist and names its chunk count; all before the 250. A crash in between leaves
    // orphan chunks, never a message without bytes.
    const id = inbound.newId();
    const ranges = rawChunkRanges(req.raw.length, rawChunkBytes);
    let written = 0;
    try {
      for (const [n, [start, end]] of ranges.entries()) {
        const write = () => inbound.insertRawChunk(id, n, req.raw.subarray(start, end));
        await (ranges.length > 1 ? inLane(write) : withTimeout(write(), storeTimeoutMs));
        written = n + 1;
        await opts.afterRawChunk?.(n, ranges.length);
      }
      const create = (key: string, reused: boolean) =>
        withTimeout(
          inbound.create(id, {
            merchantId: req.merchantId,
            door: req.door,
            messageKey: key,
            messageId,
            bodyHash: bodySha,
            ...(reused ? { messageIdReused: true } : {}),
            ...(req.bounce ? { kind: 'bounce' as const, bounceOf: req.bounce.mailId } : {}),
            envelope: req.envelope,
            size: req.raw.length,
            rawChunks: ranges.length,
            status: 'received',
            receivedAt: now(),
          }),
          storeTimeoutMs,
        );
      // The unique key (merchant, messageKey) referees duplicates, also between instances. A
      // Message-ID seen before with another body is a different mail re-using it (scripts and
      // broken clients do): it gets a key of its own, made of the Message-ID and its body hash.
      let duplicateOf = await create(messageKey, false).then(() => undefined, (e: unknown) => earlier(e, req.merchantId, messageKey));
      if (duplicateOf && messageId && !(await sameBody(duplicateOf, bodySha))) {
        messageKey = `${messageId} sha256:${bodySha}`;
        duplicateOf = await create(messageKey, true).then(() => undefined, (e: unknown) => earlier(e, req.merchantId, messageKey));
        if (!duplicateOf) log.info({ inboundId: id, merchantId: req.merchantId, messageId }, 'Message-ID re-used by a different message: stored as a new message');
      }
      if (duplicateOf) {
        // A duplicate delivery: the chunks we just wrote are not needed.
        await inbound.deleteRawChunks(id, written).catch((err) => log.warn({ err, inboundId: id }, 'could not delete the raw chunks of a duplicate'));
        result = { id: String(duplicateOf._id), duplicate: true };
      } else {
        result = { id, duplicate: false };
      }
    } catch (e) {
      if (isAppError(e)) throw e;
      throw new AppError('INTAKE_STORE_UNAVAILABLE', 'the message could not be stored', { smtpCode: 451, httpStatus: 503, cause: e });
    }
    log.info({ inboundId: result.id, merchantId: req.merchantId, messageKey, duplicate: result.duplicate, size: req.raw.length }, 'inbound message stored');
    return result;
  }

  /** The message a duplicate-key error collided with; any other error means "not stored" (451). */
  async function earlier(e: unknown, merchantId: string, messageKey: string): Promise<EarlierMessage> {
    if ((e as { code?: number }).code !== 11000) {
      throw new AppError('INTAKE_STORE_UNAVAILABLE', 'the message could not be stored', { smtpCode: 451, httpStatus: 503, cause: e });
    }
    const existing = await inbound.findByKey(merchantId, messageKey);
    if (!existing) throw new AppError('INTAKE_STORE_UNAVAILABLE', 'the message could not be stored', { smtpCode: 451, cause: e });
    return existing;
  }

  /** Whether an earlier message has this body; one stored before body hashes is read back once. */
  async function sameBody(msg: EarlierMessage, sha: string): Promise<boolean> {
    if (msg.bodyHash) return msg.bodyHash === sha;
    const raw = await inbound.rawOf(msg._id);
    return !!raw && bodyHash(raw) === sha;
  }

  return { store: storeRaw };
}
