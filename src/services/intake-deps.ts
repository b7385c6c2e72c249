// What the intake is built from (src/services/intake.service.ts and the parts beside it).
import { type Repositories } from '../db/repositories.ts';
import { type Logger } from '../logger.ts';
import { type ParsedInboundMail } from '../mail/parse-worker.ts';
import { type OrderEvents } from './order-admin.service.ts';
import { type OrderService } from './order.service.ts';
import { type BounceService } from './bounce.service.ts';
import { type RefundService } from './refund.service.ts';

export interface IntakeServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  orders: OrderService;
  mailDomain: string;
  maxLinkLifetimeDays: number;
  logger: Logger;
  /** Webhooks for what reply commands do (CANCEL → order.cancelled). */
  events?: OrderEvents;
  /** CANCEL <ref> REFUND of a partly paid order refunds each paid part (issue 13 part 1). */
  refunds?: Pick<RefundService, 'refundAll'>;
  now?: () => Date;
  /** How long a claim holds before another worker may take the message over. */
  leaseMs?: number;
  /** Attempts before a message is marked 'failed'. */
  maxAttempts?: number;
  /** Messages the intake's work runner processes at once (INTAKE_CONCURRENCY; default 4). */
  concurrency?: number;
  /** How often the runner looks for due retries and lapsed leases (default 1 s); stored mail wakes it at once. */
  pollMs?: number;
  /** The runner's lease owner id (default host:pid:random). */
  ownerId?: string;
  /**
   * Longest wait for each database write when storing (each raw chunk, then the message
   * document): the door answers 451 after it. Per write, so a 30 MiB mail is not held to the
   * budget of a 3 kB one, while a stalled database is still noticed within this time.
   */
  storeTimeoutMs?: number;
  /** Raw bytes per `inbound_raw` chunk document (default RAW_CHUNK_BYTES). */
  rawChunkBytes?: number;
  /**
   * Big mails (more than one chunk) write their chunks one at a time through a single lane and
   * pause after each for this multiple of the write's duration (default 1): multi-MiB writes
   * saturate FerretDB/SQLite, and the checkout's small reads should not queue behind a flood of
   * them (P4). 0 = no pause. Small mails do not wait in the lane.
   */
  bigMailPause?: number;
  /**
   * Fault injection for tests: runs after each raw chunk is written, before the next one and
   * before the message document. Throwing here is a crash between the writes.
   */
  afterRawChunk?: (n: number, count: number) => Promise<void> | void;
  /** MIME parser, normally the worker pool's parse (src/mail/parse-pool.ts); default: this thread. */
  parseMail?: (raw: Buffer) => Promise<ParsedInboundMail>;
  /** Loop brake: answers to mails that created no order, per sender address per clock hour. */
  replyLimitPerHour?: number;
  /** Bounces to the mails' return paths (issue 13 part 8); stored by the MX door like order mail. */
  bounces?: BounceService;
}
