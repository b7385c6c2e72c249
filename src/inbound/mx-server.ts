// The MX door: mail from the merchants' own mail systems, without SMTP AUTH. The recipient must be
// a merchant's private alias (orders+<alias>@MAIL_DOMAIN, 550 otherwise, at RCPT); the complete
// message must authenticate (mail-auth.ts: DMARC, or aligned DKIM/SPF, for one of the merchant's
// sender domains) or it is refused with 550 5.7.1 and nothing is stored. The shared hooks in
// smtp-common.ts give the size limit (552), recipient limit (452), 421 when full or closing, and
// 250 only after the raw message is stored (451 when it cannot be).
// Bounces (issue 13 part 8): RCPT TO a mail's return path `bounce+<id>-<tag>@MAIL_DOMAIN` is
// accepted when the tag verifies and the mail exists (550 otherwise, so strangers cannot forge
// bounces for arbitrary mails). No merchant alignment is asked of them: bounces come from
// MAILER-DAEMON with the null sender. They are stored the same way and processed by the bounce
// service (src/services/bounce.service.ts).
import { type SMTPServer, type SMTPServerSession } from 'smtp-server';
import { type Logger } from '../logger.ts';
import { type IntakeService } from '../services/intake.service.ts';
import { SUSPENDED_SMTP_REPLY } from '../services/merchant-suspension.service.ts';
import { type MailAuthenticator } from './mail-auth.ts';
import { createSmtpDoor, type DoorLimits, smtpError, storeMessage } from './smtp-common.ts';
import { type Repositories } from '../db/repositories.ts';

import { type MxMerchant } from '../db/merchants.repository.ts';
import { type Verp } from '../domain/verp.ts';

export type { MxMerchant };

export interface MxServerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  intake: IntakeService;
  authenticator: MailAuthenticator;
  /** The merchant owning an alias (lower case), or undefined (in production: repos.merchants.findByAlias). */
  findMerchantByAlias(alias: string): Promise<MxMerchant | undefined>;
  mailDomain: string;
  maxMessageBytes: number;
  tls: { key: string; cert: string };
  logger: Logger;
  /** Greeting name; defaults to MAIL_DOMAIN. */
  hostname?: string;
  /** The return paths of outgoing mail (server.ts); unset: no bounce address is accepted. */
  verp?: Pick<Verp, 'mailIdOf' | 'isBounceAddress'>;
  limits?: DoorLimits;
}

/** The alias in `orders+<alias>@<mailDomain>` (any case), lower-cased; undefined for other addresses. */
export function aliasOf(address: string, mailDomain: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0 || address.slice(at + 1).toLowerCase() !== mailDomain.toLowerCase()) return undefined;
  const m = /^orders\+([a-z0-9]+)$/i.exec(address.slice(0, at));
  return m ? m[1]!.toLowerCase() : undefined;
}

/** The merchant a transaction is for, keyed by its envelope (replaced by smtp-server at every reset). */
const transactionMerchant = new WeakMap<object, MxMerchant>();
/** A bounce transaction: the outbox mail its return path names, and that mail's merchant. */
const transactionBounce = new WeakMap<object, { mailId: string; merchantId: string }>();

export function createMxServer(deps: MxServerDeps): SMTPServer {
  return createSmtpDoor({
    door: 'mx',
    name: deps.hostname ?? deps.mailDomain,
    banner: 'paymail order intake',
    tls: deps.tls,
    maxMessageBytes: deps.maxMessageBytes,
    limits: deps.limits,
    logger: deps.logger,
    // Anyone may deliver here; trust comes from mail authentication, not from a log-in.
    auth: { authOptional: true, disabledCommands: ['AUTH'] },

    async acceptRecipient(address, session, log) {
      if (deps.verp?.isBounceAddress(address.address)) return acceptBounce(deps, address.address, session, log);
      if (transactionBounce.has(session.envelope)) throw smtpError(452, '4.5.3 one bounce per message, send the rest separately');
      const alias = aliasOf(address.address, deps.mailDomain);
      let merchant: MxMerchant | undefined;
      try {
        merchant = alias ? await deps.findMerchantByAlias(alias) : undefined;
      } catch (err) {
        log.error({ err }, 'merchant lookup failed');
        throw smtpError(451, '4.3.0 try again later');
      }
      if (!merchant) throw smtpError(550, '5.1.1 no such mailbox');
      if (merchant.suspended) throw smtpError(550, SUSPENDED_SMTP_REPLY);
      const bound = transactionMerchant.get(session.envelope);
      // One merchant per message, so one authentication verdict and one stored copy; a 452 makes
      // the sending MTA deliver the other recipients in a transaction of their own.
      if (bound && bound.id !== merchant.id) throw smtpError(452, '4.5.3 one merchant per message, send the rest separately');
      transactionMerchant.set(session.envelope, merchant);
    },

    async deliver(raw, session, log) {
      const bounce = transactionBounce.get(session.envelope);
      if (bounce) {
        const env = session.envelope;
        log.info({ mailId: bounce.mailId, merchantId: bounce.merchantId }, 'bounce received');
        return storeMessage(deps.intake, {
          merchantId: bounce.merchantId,
          door: 'mx',
          raw,
          envelope: { mailFrom: env.mailFrom ? env.mailFrom.address : undefined, rcptTo: env.rcptTo.map((r) => r.address), remoteAddress: session.remoteAddress },
          bounce: { mailId: bounce.mailId },
        });
      }
      const merchant = transactionMerchant.get(session.envelope);
      if (!merchant) throw smtpError(503, '5.5.1 no valid recipients');
      const env = session.envelope;
      const mailFrom = env.mailFrom ? env.mailFrom.address : undefined;
      let decision;
      try {
        decision = await deps.authenticator.check(raw, { ip: session.remoteAddress, helo: heloOf(session), sender: mailFrom }, merchant.senderDomains);
      } catch (err) {
        log.error({ err }, 'mail authentication failed to run');
        throw smtpError(451, '4.7.0 temporary authentication failure, try again later');
      }
      if (!decision.accepted) {
        log.info({ merchantId: merchant.id, auth: decision.summary, temporary: decision.temporary }, 'message refused: not authenticated');
        throw decision.temporary
          ? smtpError(451, `4.7.0 ${decision.reason}; try again later`)
          : smtpError(550, `5.7.1 ${decision.reason}`);
      }
      log.info({ merchantId: merchant.id, auth: decision.summary }, 'message authenticated');
      return storeMessage(deps.intake, {
        merchantId: merchant.id,
        door: 'mx',
        raw,
        envelope: {
          mailFrom,
          rcptTo: env.rcptTo.map((r) => r.address),
          remoteAddress: session.remoteAddress,
          auth: decision.summary,
        },
      });
    },
  });
}

/** Merchant id kept on a bounce for a mail that has none (no such mail is sent today). */
const NO_MERCHANT = 'none';

/**
 * RCPT TO a return path: its tag must verify and its mail exist (550 5.1.1 otherwise, like any
 * unknown mailbox); one mail per transaction (452 for another bounce or an order alias).
 */
async function acceptBounce(deps: MxServerDeps, address: string, session: SMTPServerSession, log: Logger): Promise<void> {
  const mailId = deps.verp?.mailIdOf(address);
  if (!mailId) {
    log.info({ rcpt: address }, 'bounce address refused: unknown or forged');
    throw smtpError(550, '5.1.1 no such mailbox');
  }
  let mail;
  try {
    mail = await deps.repos.outbox.bounceTarget(mailId);
  } catch (err) {
    log.error({ err }, 'outbox lookup failed');
    throw smtpError(451, '4.3.0 try again later');
  }
  if (!mail) throw smtpError(550, '5.1.1 no such mailbox');
  const bound = transactionBounce.get(session.envelope);
  if ((bound && bound.mailId !== mailId) || transactionMerchant.has(session.envelope)) {
    throw smtpError(452, '4.5.3 one bounce per message, send the rest separately');
  }
  transactionBounce.set(session.envelope, { mailId, merchantId: mail.merchantId ?? NO_MERCHANT });
}

/** The name the client gave in EHLO/HELO, when it gave one. */
function heloOf(session: SMTPServerSession): string | undefined {
  const helo = session.hostNameAppearsAs as string | false | undefined;
  return helo || undefined;
}
