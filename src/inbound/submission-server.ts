// The submission door: merchants send order mails with SMTP AUTH (their generated credentials).
// The door decides only what is its own — who the merchant is (535 bad credentials) and which
// recipient is theirs (550) — and hands the rest to the shared hooks in smtp-common.ts: 552 too
// large, 452 too many recipients, 421 when full or shutting down, 451 storage unavailable, and 250
// only once the raw message is stored (processing happens afterwards, see intake.service.ts).
import { type SMTPServer, type SMTPServerSession } from 'smtp-server';
import { type Logger } from '../logger.ts';
import { type IntakeService } from '../services/intake.service.ts';
import { inboundAddress, type MerchantService } from '../services/merchant.service.ts';
import { createSmtpDoor, type DoorLimits, smtpError, storeMessage } from './smtp-common.ts';

// Existing callers import these from here.
export { close, listen, smtpError } from './smtp-common.ts';

export interface SubmissionServerDeps {
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
        deps.merchants
          .authenticateSmtp(auth.username ?? '', auth.password ?? '')
          .then((merchant) => {
            if (!merchant) {
              slog.info({ user: auth.username, remoteAddress: session.remoteAddress }, 'SMTP authentication failed');
              return callback(smtpError(535, '5.7.8 authentication failed'));
            }
            const user: SessionMerchant = {
              merchantId: merchant._id,
              address: inboundAddress(merchant.alias, deps.mailDomain).toLowerCase(),
            };
            slog.info({ merchantId: merchant._id }, 'SMTP authenticated');
            callback(null, { user });
          })
          .catch((err: unknown) => {
            slog.error({ err }, 'SMTP authentication unavailable');
            callback(smtpError(454, '4.7.0 temporary authentication failure, try again later'));
          });
      },
    },

    acceptRecipient(address, session) {
      const merchant = sessionMerchant(session);
      if (!merchant || address.address.toLowerCase() !== merchant.address) throw smtpError(550, '5.1.1 no such mailbox');
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
