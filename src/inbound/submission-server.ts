// The submission door: merchants send order mails with SMTP AUTH (their generated credentials).
// The door decides only what is its own — who the merchant is (535 bad credentials) and which
// recipient is theirs (550) — and hands the rest to the shared hooks in smtp-common.ts: 552 too
// large, 452 too many recipients, 421 when full or shutting down, 451 storage unavailable, and 250
// only once the raw message is stored (processing happens afterwards, see intake.service.ts).
import { type SMTPServer, type SMTPServerSession } from 'smtp-server';
import { type Logger } from '../logger.ts';
import { type IntakeService } from '../services/intake.service.ts';
import { inboundAddress, type MerchantService } from '../services/merchant.service.ts';
import { SUSPENDED_SMTP_REPLY } from '../services/merchant-suspension.service.ts';
import { createSmtpDoor, type DoorLimits, smtpError, smtpReplyOf, storeMessage } from './smtp-common.ts';
import { isAppError } from '../domain/errors.ts';
import { type Repositories } from '../db/repositories.ts';
import { countSmtpReply, smtpAuthThrottled } from '../metrics.ts';
import { createSmtpAuthThrottle, type SmtpAuthThrottle } from '../services/smtp-auth-throttle.service.ts';

// Existing callers import these from here.
export { close, listen, smtpError } from './smtp-common.ts';

export interface SubmissionServerDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  merchants: MerchantService;
  intake: IntakeService;
  mailDomain: string;
  maxMessageBytes: number;
  tls: { key: string; cert: string };
  production: boolean;
  logger: Logger;
  /** Greeting name; defaults to MAIL_DOMAIN. */
  hostname?: string;
  limits?: DoorLimits;
  /** Brute-force throttle of AUTH (database-backed); defaults to the production policy. */
  authThrottle?: SmtpAuthThrottle;
}

/** What a successful AUTH leaves on the session. */
interface SessionMerchant {
  merchantId: string;
  address: string;
}

const sessionMerchant = (session: SMTPServerSession): SessionMerchant | undefined => session.user as SessionMerchant | undefined;

export function createSubmissionServer(deps: SubmissionServerDeps): SMTPServer {
  // The composition root names the component; each session adds its id for correlation.
  const log = deps.logger;
  const throttle = deps.authThrottle ?? createSmtpAuthThrottle({ repos: deps.repos });

  /** AUTH as the edge sees it: throttle, check, remember; throws an smtpError to refuse. */
  async function authenticate(user: string, password: string, ip: string, slog: Logger): Promise<SessionMerchant> {
    const throttled = await throttle.check(user, ip);
    if (throttled) {
      // Refused attempts count as failures too: the delay keeps growing while the attack goes on.
      await throttle.recordFailure(user, ip);
      smtpAuthThrottled.inc({ scope: throttled.scope });
      slog.warn({ user, remoteAddress: ip, ...throttled }, 'SMTP authentication throttled');
      // The delay costs the attacker time and us only an idle socket (maxClients bounds them).
      await new Promise((resolve) => setTimeout(resolve, throttled.delayMs).unref());
      throw smtpError(454, '4.7.0 too many failed authentication attempts, try again later');
    }
    const merchant = await deps.merchants.authenticateSmtp(user, password);
    if (!merchant) {
      await throttle.recordFailure(user, ip);
      slog.info({ user, remoteAddress: ip }, 'SMTP authentication failed');
      throw smtpError(535, '5.7.8 authentication failed');
    }
    // Remembering the address only spares it the per-user limit later: the password was right, so
    // a failure to record it must not refuse this log-in.
    await throttle.recordSuccess(user, ip).catch((err: unknown) => slog.warn({ err }, 'could not record the address of a successful SMTP log-in'));
    slog.info({ merchantId: merchant._id }, 'SMTP authenticated');
    return { merchantId: merchant._id, address: inboundAddress(merchant.alias, deps.mailDomain).toLowerCase() };
  }

  return createSmtpDoor({
    door: 'submission',
    name: deps.hostname ?? deps.mailDomain,
    banner: 'paymail order submission',
    tls: deps.tls,
    maxMessageBytes: deps.maxMessageBytes,
    limits: deps.limits,
    logger: log,
    auth: {
      authMethods: ['PLAIN', 'LOGIN'],
      // Credentials in clear text only on a developer's machine; production requires STARTTLS first.
      allowInsecureAuth: !deps.production,
      disabledCommands: [],

      onAuth(auth, session, callback) {
        const slog = log.child({ smtpSession: session.id });
        authenticate(auth.username ?? '', auth.password ?? '', session.remoteAddress, slog).then(
          (user) => {
            countSmtpReply('submission', 'auth', 235);
            callback(null, { user });
          },
          (err: unknown) => {
            const refusal = err instanceof Error && typeof (err as { responseCode?: unknown }).responseCode === 'number';
            if (!refusal) {
              // Too many password checks queued, or the database away: temporary either way.
              if (isAppError(err, 'PASSWORD_CHECK_BUSY')) slog.warn('SMTP authentication busy');
              else slog.error({ err }, 'SMTP authentication unavailable');
            }
            const reply = refusal ? (err as Error & { responseCode: number }) : (smtpReplyOf(err) ?? smtpError(454, '4.7.0 temporary authentication failure, try again later'));
            countSmtpReply('submission', 'auth', reply.responseCode);
            callback(reply);
          },
        );
      },
    },

    async acceptRecipient(address, session, log) {
      const merchant = sessionMerchant(session);
      if (!merchant || address.address.toLowerCase() !== merchant.address) throw smtpError(550, '5.1.1 no such mailbox');
      // Read per transaction, not at AUTH: a session opened before the suspension is refused too.
      let suspended: boolean;
      try {
        suspended = await deps.repos.merchants.isSuspended(merchant.merchantId);
      } catch (err) {
        log.error({ err }, 'merchant lookup failed');
        throw smtpError(451, '4.3.0 try again later');
      }
      if (suspended) throw smtpError(550, SUSPENDED_SMTP_REPLY);
    },

    deliver(raw, session) {
      const merchant = sessionMerchant(session);
      if (!merchant) throw smtpError(530, '5.7.0 authentication required');
      const env = session.envelope;
      return storeMessage(deps.intake, {
        merchantId: merchant.merchantId,
        door: 'submission',
        raw,
        envelope: {
          mailFrom: env.mailFrom ? env.mailFrom.address : undefined,
          rcptTo: env.rcptTo.map((r) => r.address),
          remoteAddress: session.remoteAddress,
        },
      });
    },
  });
}
