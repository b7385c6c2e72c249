// Bounces (issue 13 part 8). Every outbox mail leaves with its own return path
// (src/domain/verp.ts); a bounce or delay warning sent there is stored by the MX door like order
// mail (raw bytes before the 250, processing resumable under the intake's lease) and handed here.
// A permanent failure of a mail about an order, once per mail even when bounces arrive twice or
// processing restarts after a crash:
//   1. the claim `bounce:<mail id>` fixes the facts (the first bounce wins),
//   2. the outbox mail records them (the order's history shows "pay-link undeliverable to …"),
//   3. the `mail.bounced` webhook is queued (dedupe key `mail.bounced:<mail id>`),
//   4. the merchant gets ONE mail (template mail-bounced, outbox key `mail-bounced:<mail id>`)
//      asking for a corrected address (`RESEND <ref> new@address`),
//   5. the claim is marked applied.
// Never a loop: a bounce of a bounce notice, or of any mail without an order, is recorded only;
// when the address that failed is the merchant's own, no mail goes to it. A delay (4.x.x, Action:
// delayed) is recorded on the mail and alerts nobody; anything else (an out-of-office reply to
// the return path) is recorded on the inbound message only.
import { readBounce, verdictFor, type BounceOutcome } from '../domain/bounce.ts';
import { type InboundMessageDoc } from '../db/inbound.repository.ts';
import { type BounceFacts, type BounceTarget } from '../db/outbox.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { type Logger } from '../logger.ts';
import { enqueueMail } from '../mail/outbox.ts';
import { parseInboundMail, type ParsedInboundMail } from '../mail/parse-worker.ts';
import { type EventsService } from './events.service.ts';
import { orderFacts } from './order-effects.ts';
import { payableAt } from '../domain/order-plan.ts';

/** The notice to the merchant: its own bounce is recorded, never answered. */
export const BOUNCE_NOTICE_TEMPLATE = 'mail-bounced';

export interface BounceServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  mailDomain: string;
  /** The mail.bounced webhook. */
  events?: Pick<EventsService, 'mailBounced'>;
  logger: Logger;
  /** MIME parser (the parse pool's in server.ts); default: this thread. */
  parseMail?: (raw: Buffer) => Promise<ParsedInboundMail>;
  now?: () => Date;
}

/** What processing a bounce found, kept on the inbound message (`result.bounce`). */
export interface BounceOutcomeRecord {
  mailId: string;
  outcome: BounceOutcome;
  recipient?: string;
  status?: string;
  /** The merchant was told (mail and/or webhook) by this or an earlier processing of the mail's bounce. */
  alerted: boolean;
}

type StoredFacts = Omit<BounceFacts, 'at'> & { at: string };

export function createBounceService(deps: BounceServiceDeps) {
  const { outbox, claims, orders, merchants, inbound } = deps.repos;
  const now = deps.now ?? (() => new Date());
  const parseMail = deps.parseMail ?? parseInboundMail;
  const log = deps.logger;

  /** Steps 3 and 4: the webhook and the merchant's mail, for a mail about an order. */
  async function alert(mail: BounceTarget, mailId: string, facts: BounceFacts): Promise<boolean> {
    if (mail.template === BOUNCE_NOTICE_TEMPLATE || !mail.orderId || !mail.merchantId) return false;
    const [order, merchant] = await Promise.all([orders.byId(mail.orderId), merchants.findById(mail.merchantId)]);
    if (!order || !merchant) return false;
    await deps.events?.mailBounced(order, merchant, { mailId, template: mail.template, recipient: facts.recipient, status: facts.status, reason: facts.reason, at: facts.at });
    // The merchant's own address failed: a mail there would bounce too.
    if (facts.recipient === merchant.email.toLowerCase()) return true;
    const at = now();
    await enqueueMail(
      {
        dedupeKey: `mail-bounced:${mailId}`,
        template: BOUNCE_NOTICE_TEMPLATE,
        locale: merchant.locale,
        to: [merchant.email],
        // A reply reaches paymail (the merchant's order address), where RESEND is a command.
        replyTo: `orders+${merchant.alias}@${deps.mailDomain}`,
        merchantId: merchant._id,
        orderId: order._id,
        data: {
          ...orderFacts(order, merchant),
          mail: mail.template,
          recipient: facts.recipient,
          status: facts.status ?? '',
          reason: facts.reason,
          bouncedAt: facts.at.toISOString(),
          payable: payableAt(order, at),
        },
      },
      deps.mailDomain,
      outbox,
    );
    return true;
  }

  /** Steps 1–5 for a permanent failure; true when the merchant was (or had been) alerted. */
  async function failed(mail: BounceTarget, mailId: string, found: BounceFacts): Promise<boolean> {
    const key = `bounce:${mailId}`;
    let facts = found;
    const stored: StoredFacts = { ...found, at: found.at.toISOString() };
    if (!(await claims.once(key, { kind: 'mail-bounce', subject: mailId, payload: { ...stored } }, found.at))) {
      // Bounced before (a second report, a redelivery, a restart): the first one's facts stand.
      const first = (await claims.get(key))?.payload as StoredFacts | undefined;
      if (first) facts = { ...first, at: new Date(first.at) };
    }
    await outbox.recordBounce(mailId, facts);
    const alerted = await alert(mail, mailId, facts);
    await claims.markApplied(key);
    return alerted;
  }

  /** Processes one stored bounce (the intake's claim holds it); what it found goes on the message. */
  async function handle(msg: InboundMessageDoc, raw?: Buffer): Promise<BounceOutcomeRecord> {
    const inboundId = String(msg._id);
    const mailId = msg.bounceOf ?? '';
    const mail = mailId ? await outbox.bounceTarget(mailId) : null;
    if (!mail) {
      log.warn({ inboundId, mailId }, 'bounce for a mail that no longer exists: recorded only');
      return { mailId, outcome: 'none', alerted: false };
    }
    const bytes = raw ?? (await inbound.readRaw(msg));
    const parsed = await parseMail(bytes);
    const failedRecipients = parsed.headers.get('x-failed-recipients');
    const report = readBounce({
      raw: bytes,
      text: parsed.text,
      subject: parsed.subject,
      failedRecipients: typeof failedRecipients === 'string' ? failedRecipients : undefined,
    });
    const verdict = verdictFor(report, [...mail.to, ...(mail.cc ?? [])]);
    const recipient = verdict.recipient ?? mail.to[0]?.toLowerCase() ?? '';
    const base = { mailId, outcome: verdict.outcome, ...(recipient ? { recipient } : {}), ...(verdict.status ? { status: verdict.status } : {}) };
    const facts: BounceFacts = { at: now(), recipient, ...(verdict.status ? { status: verdict.status } : {}), reason: verdict.reason, inboundId };
    const logged = { inboundId, mailId, template: mail.template, orderId: mail.orderId, outcome: verdict.outcome, status: verdict.status, format: report.format };
    if (verdict.outcome === 'none') {
      log.info(logged, 'mail to a return path is no bounce (auto-reply, success notice): recorded only');
      return { ...base, alerted: false };
    }
    if (verdict.outcome === 'delayed') {
      await outbox.recordDelay(mailId, facts);
      log.info(logged, 'delivery delayed: recorded');
      return { ...base, alerted: false };
    }
    const alerted = await failed(mail, mailId, facts);
    log.info({ ...logged, alerted }, 'mail bounced');
    return { ...base, alerted };
  }

  return { handle };
}
export type BounceService = ReturnType<typeof createBounceService>;
