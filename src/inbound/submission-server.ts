// The submission door: merchants send order mails with SMTP AUTH (their generated credentials).
// Each hook translates one SMTP phase into one service call and maps the outcome to a reply code:
// 535 bad credentials, 550 wrong recipient, 552 too large, 451 storage unavailable, and 250 only
// once the raw message is stored (processing happens afterwards, see intake.service.ts).
import { type AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { isAppError } from '../domain/errors.ts';
import { type Logger } from '../logger.ts';
import { type IntakeService } from '../services/intake.service.ts';
import { inboundAddress, type MerchantService } from '../services/merchant.service.ts';

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
}

/** What a successful AUTH leaves on the session. */
interface SessionMerchant {
  merchantId: string;
  address: string;
}

/** An error carrying the SMTP reply code smtp-server should answer with. */
export function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

const sessionMerchant = (session: SMTPServerSession): SessionMerchant | undefined => session.user as SessionMerchant | undefined;

export function createSubmissionServer(deps: SubmissionServerDeps): SMTPServer {
  // The composition root names the component; each session adds its id for correlation.
  const log = deps.logger;
  const limit = deps.maxMessageBytes;

  const server: SMTPServer = new SMTPServer({
    name: deps.hostname ?? deps.mailDomain,
    banner: 'paymail order submission',
    key: deps.tls.key,
    cert: deps.tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    // Credentials in clear text only on a developer's machine; production requires STARTTLS first.
    allowInsecureAuth: !deps.production,
    size: limit,
    disabledCommands: [],
    logger: false,
    closeTimeout: 10_000,

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

    onMailFrom(address, _session, callback) {
      // smtp-server checks SIZE against `size` too; kept here so the limit holds with hideSize.
      const declared = address.args ? Number((address.args as Record<string, string | true>).SIZE) : NaN;
      if (declared > limit) return callback(smtpError(552, `5.3.4 message too big: the limit is ${limit} bytes`));
      callback();
    },

    onRcptTo(address, session, callback) {
      const merchant = sessionMerchant(session);
      if (!merchant || address.address.toLowerCase() !== merchant.address) {
        return callback(smtpError(550, '5.1.1 no such mailbox'));
      }
      callback();
    },

    onData(stream: SMTPServerDataStream, session, reply) {
      let answered = false;
      const callback: typeof reply = (err, message) => {
        if (answered) return;
        answered = true;
        reply(err, message);
      };
      const merchant = sessionMerchant(session);
      const slog = log.child({ smtpSession: session.id });
      const chunks: Buffer[] = [];
      let bytes = 0;
      let tooBig = false;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // Over the limit: drop what we have but keep draining, so the client reads our 552.
        if (!tooBig && (stream.sizeExceeded || bytes > limit)) {
          tooBig = true;
          chunks.length = 0;
        }
        if (!tooBig) chunks.push(chunk);
      });
      stream.once('error', (err) => {
        slog.warn({ err }, 'DATA stream failed');
        callback(smtpError(451, '4.3.0 try again later'));
      });
      stream.once('end', () => {
        if (tooBig || stream.sizeExceeded) {
          slog.info({ bytes, limit }, 'message refused: too big');
          return callback(smtpError(552, `5.3.4 message too big: the limit is ${limit} bytes`));
        }
        if (!merchant) return callback(smtpError(530, '5.7.0 authentication required'));
        const env = session.envelope;
        deps.intake
          .store({
            merchantId: merchant.merchantId,
            door: 'submission',
            raw: Buffer.concat(chunks, bytes),
            envelope: {
              mailFrom: env.mailFrom ? env.mailFrom.address : undefined,
              rcptTo: env.rcptTo.map((r) => r.address),
              remoteAddress: session.remoteAddress,
            },
          })
          .then((stored) => callback(null, `2.0.0 stored as ${stored.id}${stored.duplicate ? ' (already received)' : ''}`))
          .catch((err: unknown) => {
            if (isAppError(err, 'INTAKE_CLOSING')) return callback(smtpError(421, '4.3.2 shutting down, try again later'));
            slog.error({ err }, 'message could not be stored');
            callback(smtpError(451, '4.3.0 try again later'));
          });
      });
    },
  });

  server.on('error', (err) => log.error({ err }, 'SMTP submission server error'));
  return server;
}

/** Starts listening; resolves with the bound port (useful with port 0). */
export function listen(server: SMTPServer, port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting connections and waits (up to closeTimeout) for open sessions to finish. */
export function close(server: SMTPServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
