// The intake use case: what a stored inbound message becomes — a reply command, a batch of
// orders, or one order — and the merchant's answer (RFC 3834 silence and the loop brake included).
import { isAppError, type FieldProblem } from '../domain/errors.ts';
import { batchFormat, parseBatch } from '../domain/batch.ts';
import { automaticMailReason, senderAddress, type AutomaticMailReason } from '../domain/auto-mail.ts';
import { parseCommand } from '../domain/commands.ts';
import { readOrderMail, type OrderDraft } from '../domain/order-mail.ts';
import { type InboundMessageDoc } from '../db/inbound.repository.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { repliesSuppressed } from '../metrics.ts';
import { parseInboundMail } from '../mail/parse-worker.ts';
import { createCommandService } from './commands.service.ts';
import { type CreateOptions, type OrderSource } from './order.service.ts';
import { describe, queueIntakeReply, type CreatedEntry } from './intake-reply.ts';
import type { IntakeServiceDeps } from './intake-deps.ts';

export type HandleResult = { orderIds: string[]; problems: FieldProblem[]; replied: boolean; command?: string; silenced?: SilenceReason };

/** Why an inbound mail was recorded without an answer (RFC 3834, or the per-sender loop brake). */
export type SilenceReason = AutomaticMailReason | 'loop-brake';

/** Handles claimed messages; `now` is the service's clock. */
export function createMessageHandler(deps: IntakeServiceDeps, now: () => Date) {
  // "A few" answers per sender and hour (RFC 3834 §2) to mails that created no order: enough for a
  // merchant fixing a mail, few enough that a responder which marks nothing is stopped at once.
  const replyLimitPerHour = deps.replyLimitPerHour ?? 10;
  let lastSlotSweep = 0;
  const log = deps.logger;
  const inbound = deps.repos.inbound;
  // Reply commands act on orders and answer by mail, keyed by the inbound message.
  const commands = createCommandService({ repos: deps.repos,
    orders: deps.orders,
    mailDomain: deps.mailDomain,
    maxLinkLifetimeDays: deps.maxLinkLifetimeDays,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.refunds ? { refunds: deps.refunds } : {}),
    now,
  });

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
      await queueIntakeReply(deps, merchant, {
        dedupeKey: `intake-reply:${id}`,
        messageId,
        orderIds,
        data: { subject, created, problems, notices, ...(batch ? { batch } : {}), timeZone: merchant.timezone },
      });
    }
    return { orderIds, problems, replied, ...(braked ? { silenced: 'loop-brake' as const } : {}) };
  }

  return { handle };
}
