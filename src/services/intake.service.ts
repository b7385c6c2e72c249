// Order intake: the SMTP doors hand over raw messages here. `store` makes a message durable (the
// door answers 250 only after it returns); processing runs afterwards, is claimed with a lease,
// and is resumable, so a crash between "stored" and "order created" loses nothing.
import { createHash } from 'node:crypto';
import { AppError, isAppError, type FieldProblem } from '../domain/errors.ts';
import { batchFormat, parseBatch } from '../domain/batch.ts';
import { automaticMailReason, senderAddress, type AutomaticMailReason } from '../domain/auto-mail.ts';
import { parseCommand } from '../domain/commands.ts';
import { readOrderMail, type OrderDraft } from '../domain/order-mail.ts';
import { isDatabaseUnavailable, writeUntilStored } from '../db/durable-write.ts';
import { RAW_CHUNK_BYTES, rawChunkRanges, type EarlierMessage, type InboundMessageDoc } from '../db/inbound.repository.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { repliesSuppressed } from '../metrics.ts';
import { type OrderDoc } from '../db/orders.repository.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { parseInboundMail, type ParsedInboundMail } from '../mail/parse-worker.ts';
import { createCommandService } from './commands.service.ts';
import { type OrderEvents } from './order-admin.service.ts';
import { type CreateOptions, type CreateResult, type OrderService, type OrderSource } from './order.service.ts';
import { type Repositories } from '../db/repositories.ts';
import { withTimeout } from '../domain/with-timeout.ts';

export interface IntakeServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  orders: OrderService;
  mailDomain: string;
  maxLinkLifetimeDays: number;
  logger: Logger;
  /** Webhooks for what reply commands do (CANCEL → order.cancelled). */
  events?: OrderEvents;
  now?: () => Date;
  /** How long a claim holds before another worker may take the message over. */
  leaseMs?: number;
  /** Attempts before a message is marked 'failed'. */
  maxAttempts?: number;
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
}

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
}

export interface StoreResult {
  id: string;
  /** true when the same message (same merchant and Message-ID or bytes) was stored before. */
  duplicate: boolean;
}

export interface CreatedEntry {
  reference: string;
  amountMinor: number;
  currency: string;
  link: string;
  expiresAt: string;
  duplicate?: 'source' | 'reference';
  /** The expiry asked for was beyond the maximum and was capped. */
  capped?: boolean;
  /** Batch row delivered to the customer: the link was mailed to this address. */
  deliveredTo?: string;
  /** Batch row number (1 = first order, the header not counted). */
  row?: number;
}

type HandleResult = { orderIds: string[]; problems: FieldProblem[]; replied: boolean; command?: string; silenced?: SilenceReason };

/** Why an inbound mail was recorded without an answer (RFC 3834, or the per-sender loop brake). */
export type SilenceReason = AutomaticMailReason | 'loop-brake';

export type ProcessOutcome =
  | { status: 'processed'; orderIds: string[]; problems: FieldProblem[]; replied: boolean; command?: string; silenced?: SilenceReason }
  | { status: 'skipped' }
  | { status: 'retry' | 'failed'; error: string };

const HEADER_SCAN_LIMIT = 256 * 1024;

/**
 * The Message-ID from the raw header block, without parsing the message: headers end at the first
 * empty line; folded continuation lines are joined.
 */
export function extractMessageId(raw: Buffer): string | undefined {
  const head = raw.subarray(0, Math.min(raw.length, HEADER_SCAN_LIMIT)).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? head : head.slice(0, end)).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length < 11 || line.slice(0, 11).toLowerCase() !== 'message-id:') continue;
    let value = line.slice(11);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += ' ' + lines[++i]!.trim();
    const lt = value.indexOf('<');
    const gt = value.indexOf('>', lt + 1);
    const id = lt >= 0 && gt > lt ? value.slice(lt, gt + 1) : value.trim();
    // An absurd header is no identity: fall back to the hash of the bytes.
    return id.length > 2 && id.length <= 998 && !/\s/.test(id) ? id : undefined;
  }
  return undefined;
}

/**
 * SHA-256 of the body (the bytes after the first empty line). The header block is left out: a
 * redelivery through another relay carries other Received lines but is the same message.
 */
export function bodyHash(raw: Buffer): string {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const cut = [crlf < 0 ? -1 : crlf + 4, lf < 0 ? -1 : lf + 2].filter((i) => i >= 0);
  const start = cut.length > 0 ? Math.min(...cut) : raw.length;
  return createHash('sha256').update(raw.subarray(start)).digest('hex');
}

export function createIntakeService(deps: IntakeServiceDeps) {
  const inbound = deps.repos.inbound;
  const now = deps.now ?? (() => new Date());
  // Short, because a message whose worker died waits this long before another takes it over;
  // processing is idempotent (orders per source key, mails per dedupe key), so a slow worker
  // overtaken after a minute costs a repeat, never a duplicate.
  const leaseMs = deps.leaseMs ?? 60_000;
  const maxAttempts = deps.maxAttempts ?? 5;
  const storeTimeoutMs = deps.storeTimeoutMs ?? 5_000;
  const rawChunkBytes = deps.rawChunkBytes ?? RAW_CHUNK_BYTES;
  const bigMailPause = deps.bigMailPause ?? 1;
  // "A few" answers per sender and hour (RFC 3834 §2) to mails that created no order: enough for a
  // merchant fixing a mail, few enough that a responder which marks nothing is stopped at once.
  const replyLimitPerHour = deps.replyLimitPerHour ?? 10;
  let lastSlotSweep = 0;
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
  // The composition root names the component (logger.child({ component: 'intake' })).
  const log = deps.logger;
  // Reply commands act on orders and answer by mail, keyed by the inbound message.
  const commands = createCommandService({ repos: deps.repos,
    orders: deps.orders,
    mailDomain: deps.mailDomain,
    maxLinkLifetimeDays: deps.maxLinkLifetimeDays,
    ...(deps.events ? { events: deps.events } : {}),
    now,
  });
  /** Processing runs in flight, so tests and shutdown can wait for them. */
  const running = new Set<Promise<unknown>>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;
  let sweep: NodeJS.Timeout | undefined;

  /** `raw`: the bytes just stored, handed over so processing need not read them back. */
  function schedule(id: string, delayMs = 0, raw?: Buffer): void {
    if (closing) return;
    const run = () => {
      const p = processMessage(id, raw)
        .catch((e) => {
          // Typically the database went away while claiming: try again once a claim we may have
          // left behind has lapsed (the sweep would too, later).
          log.error({ err: e, inboundId: id }, 'intake processing crashed; will retry');
          schedule(id, leaseMs + 1_000);
        })
        .finally(() => running.delete(p));
      running.add(p);
    };
    if (delayMs === 0) {
      // setImmediate: the SMTP answer goes out first, processing follows.
      const p = new Promise<void>((resolve) => setImmediate(() => (run(), resolve())));
      running.add(p);
      void p.finally(() => running.delete(p));
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      run();
    }, delayMs);
    t.unref();
    timers.add(t);
  }

  async function store(req: StoreRequest): Promise<StoreResult> {
    if (closing) throw new AppError('INTAKE_CLOSING', 'shutting down', { smtpCode: 421 });
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
        await deps.afterRawChunk?.(n, ranges.length);
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
    // A duplicate may be a retry of a message whose processing never finished: claiming is atomic,
    // so scheduling it again is harmless. A new message is processed from the bytes in hand:
    // reading megabytes back would cost the database as much again as storing them (P4).
    schedule(result.id, 0, result.duplicate ? undefined : req.raw);
    if (result.duplicate) {
      const p = answerRedelivery(result.id)
        .catch((err) => log.error({ err, inboundId: result.id }, 'could not answer a redelivered message'))
        .finally(() => running.delete(p));
      running.add(p);
    }
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

  /**
   * Takes the message for processing: 'received', or 'processing' whose lease ran out (the
   * repository referees racing workers).
   */
  async function claim(id: string): Promise<InboundMessageDoc | null> {
    const taken = await inbound.claim(id, leaseMs, now());
    if (taken === 'held') {
      // Held: by a live worker (the re-check then finds it processed), or by one that died
      // between claiming and marking the message (taken over once the claim's lease lapses).
      schedule(id, leaseMs + 1_000);
      return null;
    }
    return taken;
  }

  function entry(order: OrderDoc, link: string, duplicate?: 'source' | 'reference', extra: Partial<CreatedEntry> = {}): CreatedEntry {
    return {
      reference: order.reference,
      amountMinor: order.amountMinor,
      currency: order.currency,
      link,
      expiresAt: order.expiresAt.toISOString(),
      ...(duplicate ? { duplicate } : {}),
      ...extra,
    };
  }

  /**
   * Creates one order (idempotent per `key`) and says what became of it. A source duplicate is
   * this very message processed before a crash: its pay-link mail is queued again (idempotent)
   * and it counts as created.
   */
  async function createOne(merchant: MerchantDoc, draft: OrderDraft, source: OrderSource, opts: CreateOptions, extra: Partial<CreatedEntry>) {
    const r = await deps.orders.create(merchant, draft, source, opts);
    if (r.duplicateOf === 'source') await deps.orders.queueCreatedMail(r.order, merchant, source, opts);
    return { orderId: r.order._id, entry: describe(r, opts, extra) };
  }

  /** The reply's line for a created (or already existing) order. */
  function describe(r: CreateResult, opts: CreateOptions, extra: Partial<CreatedEntry>): CreatedEntry {
    const toCustomer = opts.payLinkMail === 'customer-only' && r.order.delivery === 'customer' && r.order.customer?.email;
    return entry(r.order, r.link, r.duplicateOf === 'reference' ? 'reference' : undefined, {
      ...extra,
      ...(toCustomer && r.duplicateOf !== 'reference' ? { deliveredTo: r.order.customer!.email! } : {}),
    });
  }

  /** A refusal by the order service (e.g. an expiry already past) is the merchant's problem to fix. */
  function orderProblem(e: unknown, row?: number): FieldProblem {
    if (!isAppError(e) || e.httpStatus >= 500) throw e;
    return { field: e.code === 'ORDER_EXPIRY_PAST' ? 'expiry' : 'order', code: e.code, message: e.message, ...(row ? { row } : {}) };
  }

  /** Recorded, not answered: logged and counted. */
  function silence(id: string, reason: SilenceReason, sender: string | undefined) {
    repliesSuppressed.inc({ reason });
    log.info({ inboundId: id, reason, sender }, reason === 'loop-brake' ? 'answer held back by the loop brake' : 'automatic mail recorded, not answered');
    return { orderIds: [] as string[], problems: [] as FieldProblem[], replied: false, silenced: reason };
  }

  /** Takes one of the sender's answer slots for this hour; false when the loop brake holds. */
  async function mayAnswer(sender: string | undefined, id: string): Promise<boolean> {
    if (!sender) return true;
    const at = now();
    if (at.getTime() - lastSlotSweep > 600_000) {
      lastSlotSweep = at.getTime();
      await deps.repos.limits.sweepReplySlots(at);
    }
    return deps.repos.limits.takeReplySlot(sender, replyLimitPerHour, id, at);
  }

  async function handle(msg: InboundMessageDoc, merchant: MerchantDoc, raw?: Buffer): Promise<HandleResult> {
    const id = String(msg._id);
    const bytes = raw ?? (await inbound.readRaw(msg));
    // RFC 3834: auto-replies, bounces and list mail are never answered (an answer feeds a loop).
    const envelopeFrom = msg.envelope?.mailFrom ?? undefined;
    const automatic = automaticMailReason(bytes, envelopeFrom);
    const sender = senderAddress(bytes, envelopeFrom);
    if (automatic) return silence(id, automatic, sender);
    // MIME parsing runs in the parse pool's workers (server.ts); without one, on this thread.
    const parseMail = deps.parseMail ?? parseInboundMail;
    const mail = await parseMail(bytes);
    // Capped: a hostile subject (hundreds of kB) must not travel into orders and reply mails.
    const subject = (mail.subject ?? '').slice(0, 500);
    const messageId = mail.messageId ?? msg.messageId ?? undefined;
    const source = { inboundMessageId: id, ...(messageId ? { messageId } : {}), subject };
    const ctx = { defaultCurrency: merchant.currency, now: now(), maxLifetimeDays: deps.maxLinkLifetimeDays, timeZone: merchant.timezone };

    // A reply command (STATUS/CANCEL/RESEND/EXTEND) is answered by the command service instead.
    const command = parseCommand(mail);
    if (command) {
      const r = await commands.execute(merchant, command, { inboundId: id, messageId, subject });
      return { orderIds: r.orderId ? [r.orderId] : [], problems: [], replied: true, command: r.code };
    }

    const problems: FieldProblem[] = [];
    const notices: FieldProblem[] = [];
    const created: CreatedEntry[] = [];
    const orderIds: string[] = [];
    const isCapped = (n: FieldProblem[]) => n.some((p) => p.code === 'ORDER_EXPIRY_CAPPED');
    const batchFiles = mail.attachments.filter((a) => batchFormat(a));
    let batch: { filename: string; rows: number } | undefined;
    if (batchFiles.length > 0) {
      // A batch: the attachment is the order list and the body only a cover note. The merchant
      // gets ONE reply listing every link instead of a pay-link mail per row; rows delivered to
      // the customer still mail their customer.
      const [file, ...others] = batchFiles;
      for (const o of others) {
        problems.push({ field: 'attachment', code: 'BATCH_ONE_FILE_ONLY', value: o.filename ?? o.contentType, message: 'one batch file per mail: this one was not read' });
      }
      const r = parseBatch(file!, ctx);
      batch = { filename: file!.filename ?? '', rows: r.ok ? r.rows.length : 0 };
      if (!r.ok) problems.push(r.problem);
      else {
        notices.push(...r.notices);
        for (const row of r.rows) problems.push(...row.problems);
        const good = r.rows.filter((row) => row.draft);
        const opts: CreateOptions = { payLinkMail: 'customer-only' };
        const results = await deps.orders.createMany(
          merchant,
          good.map((row) => ({ draft: row.draft!, source: { key: `msg:${id}:${row.row}`, ...source } })),
          opts,
        );
        for (const [k, c] of results.entries()) {
          const row = good[k]!;
          if ('error' in c) {
            problems.push(orderProblem(c.error, row.row));
            continue;
          }
          // Created before a crash: its customer's pay-link mail may not have been queued (idempotent).
          if (c.duplicateOf === 'source') await deps.orders.queueCreatedMail(c.order, merchant, { key: c.order.sourceKey, ...source }, opts);
          orderIds.push(c.order._id);
          created.push(describe(c, opts, { row: row.row, ...(isCapped(row.notices) ? { capped: true } : {}) }));
        }
        problems.sort((a, b) => (a.row ?? 0) - (b.row ?? 0));
      }
    } else {
      const parsed = await readOrderMail(mail, ctx, parseMail);
      problems.push(...parsed.problems);
      notices.push(...parsed.notices.filter((n) => n.code !== 'ORDER_EXPIRY_CAPPED'));
      if (parsed.draft) {
        try {
          const c = await createOne(merchant, parsed.draft, { key: `msg:${id}:0`, ...source }, {}, isCapped(parsed.notices) ? { capped: true } : {});
          orderIds.push(c.orderId);
          created.push(c.entry);
        } catch (e) {
          problems.push(orderProblem(e));
        }
      }
    }
    if (msg.messageIdReused && messageId) {
      // Processed as a new mail; the merchant learns why it was not taken for a repeat of the first.
      notices.push({
        field: 'messageId',
        code: 'INTAKE_MESSAGE_ID_REUSED',
        value: messageId,
        message: 'an earlier, different mail carried this Message-ID: this one was processed as a new mail',
      });
    }
    // A single new order already answers the merchant with its pay-link mail; reply only when
    // there is something to explain (problems, notes, a capped expiry, a reference already open).
    // A batch is always answered: its reply carries the links.
    const wanted = !!batch || problems.length > 0 || notices.length > 0 || created.some((c) => c.duplicate === 'reference' || c.capped);
    // A loop is a mail that creates nothing answered by a mail that creates nothing: only answers
    // to mails without any order count against the sender (a merchant's busy hour of orders, batches
    // and commands is never held back).
    const braked = wanted && orderIds.length === 0 && !(await mayAnswer(sender, id));
    if (braked) silence(id, 'loop-brake', sender);
    const replied = wanted && !braked;
    if (replied) {
      await enqueueMail(
        {
          dedupeKey: `intake-reply:${id}`,
          template: 'intake-reply',
          locale: merchant.locale,
          to: [merchant.email],
          ...(messageId ? { inReplyTo: messageId, references: [messageId] } : {}),
          merchantId: merchant._id,
          ...(orderIds[0] ? { orderId: orderIds[0] } : {}),
          data: { subject, created, problems, notices, ...(batch ? { batch } : {}), timeZone: merchant.timezone },
        },
        deps.mailDomain,
      );
    }
    return { orderIds, problems, replied, ...(braked ? { silenced: 'loop-brake' as const } : {}) };
  }

  /**
   * The same message delivered again (same merchant and Message-ID, or the same bytes) after it
   * was processed: nothing is created; the merchant is answered once with the existing links.
   */
  async function answerRedelivery(id: string): Promise<void> {
    const msg = await inbound.findOutcome(id);
    const orderIds = msg?.result?.orderIds ?? [];
    if (msg?.status !== 'processed' || orderIds.length === 0) return;
    const merchant = await deps.repos.merchants.findById(msg.merchantId);
    if (!merchant) return;
    const found = await deps.repos.orders.manyOfMerchant(merchant._id, orderIds);
    const byId = new Map(found.map((o) => [o._id, o]));
    const created = orderIds.flatMap((oid) => {
      const o = byId.get(oid);
      return o ? [entry(o, deps.orders.linkFor(o), 'source')] : [];
    });
    const messageId = msg.messageId ?? undefined;
    await enqueueMail(
      {
        dedupeKey: `intake-reply:${id}:redelivered`,
        template: 'intake-reply',
        locale: merchant.locale,
        to: [merchant.email],
        ...(messageId ? { inReplyTo: messageId, references: [messageId] } : {}),
        merchantId: merchant._id,
        ...(orderIds[0] ? { orderId: orderIds[0] } : {}),
        data: { subject: found[0]?.source?.subject ?? '', created, problems: [], timeZone: merchant.timezone },
      },
      deps.mailDomain,
    );
  }

  /** `raw`: the stored bytes when the caller has them (just stored); else they are read back. */
  async function processMessage(id: string, raw?: Buffer): Promise<ProcessOutcome> {
    const msg = await claim(id);
    if (!msg) return { status: 'skipped' };
    try {
      const merchant = await deps.repos.merchants.findById(msg.merchantId);
      if (!merchant) throw new AppError('INTAKE_MERCHANT_GONE', `merchant ${msg.merchantId} no longer exists`);
      const result = await handle(msg, merchant, raw);
      // Processed: that fact must reach the database however long it is away, or the lease would
      // run out and the message be processed again (src/db/durable-write.ts).
      await writeUntilStored(
        () =>
          inbound.markProcessed(
            msg._id,
            msg.attempts ?? 1,
            { orderIds: result.orderIds, problems: result.problems, ...(result.silenced ? { silenced: result.silenced } : {}) },
            now(),
          ),
        {
          stopping: () => closing,
          log: log.child({ inboundId: id }),
          what: 'message processed',
        },
      );
      log.info({ inboundId: id, merchantId: msg.merchantId, orderIds: result.orderIds, problems: result.problems.length }, 'inbound message processed');
      return { status: 'processed', ...result };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const attempts = msg.attempts ?? 1;
      // MAIL_PARSE_FAILED is the parser refusing these bytes (e.g. too many MIME parts): a retry
      // would fail the same way.
      // The database being away is no reason to give a message up, however long it lasts.
      const giveUp =
        !isDatabaseUnavailable(e) &&
        (attempts >= maxAttempts || isAppError(e, 'INTAKE_MERCHANT_GONE') || isAppError(e, 'MAIL_PARSE_FAILED'));
      const released = await inbound.release(msg._id, attempts, giveUp, error).then(
        () => true,
        (err) => (log.error({ err, inboundId: id }, 'could not release inbound message'), false),
      );
      log.error({ err: e, inboundId: id, attempts, giveUp }, 'inbound message processing failed');
      // Back off in-process (resumePending() at start-up covers a crash in between); a message
      // that could not be released stays leased: try again when the lease has run out.
      if (!giveUp) schedule(id, released ? Math.min(60_000, 1_000 * 2 ** attempts) : leaseMs + 1_000);
      return { status: giveUp ? 'failed' : 'retry', error };
    }
  }

  /** Processes everything stored but not finished (after a crash or restart); returns how many. */
  async function resumePending(limit = 1000): Promise<number> {
    const pending = await inbound.unfinished(now(), limit);
    for (const id of pending) {
      if (closing) break;
      await processMessage(id);
    }
    return pending.length;
  }

  /**
   * Sweeps for unfinished messages every `intervalMs`: picks up work whose in-process retry was
   * lost (e.g. the database went away while releasing it) or whose worker died on another instance.
   */
  function startSweep(intervalMs = 30_000): void {
    if (sweep || closing) return;
    let busy = false;
    sweep = setInterval(() => {
      if (busy) return;
      busy = true;
      const p = resumePending()
        .catch((err) => log.error({ err }, 'intake sweep failed'))
        .finally(() => {
          busy = false;
          running.delete(p);
        });
      running.add(p);
    }, intervalMs);
    sweep.unref();
  }

  /** Resolves when no processing is running or queued to run now (tests, graceful shutdown). */
  async function idle(): Promise<void> {
    while (running.size > 0) await Promise.allSettled([...running]);
  }

  /** Stops taking new messages and waits for the running ones. */
  async function close(): Promise<void> {
    closing = true;
    clearInterval(sweep);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await idle();
  }

  return { store, process: (id: string) => processMessage(id), resumePending, startSweep, idle, close };
}
export type IntakeService = ReturnType<typeof createIntakeService>;
