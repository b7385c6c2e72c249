// What the two SMTP doors (submission and MX) share: one smtp-server options object with the
// protocol limits, the hooks every door runs before its own decisions (closing flag, SIZE,
// recipient count, size-limited DATA reading, error → reply code mapping), and a graceful close
// that answers 421 to new sessions while in-flight transactions finish. A door only supplies
// "is this recipient acceptable" and "deliver this complete message" (see createSmtpDoor).
import { type AddressInfo } from 'node:net';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import { errorCodeSpec } from '../domain/error-codes.ts';
import { isAppError } from '../domain/errors.ts';
import { type Logger } from '../logger.ts';
import { countSmtpReply } from '../metrics.ts';
import { type IntakeService, type StoreRequest } from '../services/intake.service.ts';

/** Protocol limits of a door; every field has a production default. */
export interface DoorLimits {
  /** RCPT commands per transaction, refused ones included (harvesting defence); 452 beyond. */
  maxRecipients?: number;
  /** Simultaneous connections; 421 beyond. */
  maxClients?: number;
  /** Idle time before a client is disconnected (421). */
  socketTimeoutMs?: number;
  /** How long close() lets in-flight transactions finish before cutting them off. */
  closeTimeoutMs?: number;
}

export const DEFAULT_DOOR_LIMITS: Required<DoorLimits> = {
  maxRecipients: 10,
  maxClients: 100,
  socketTimeoutMs: 60_000,
  closeTimeoutMs: 10_000,
};

export type SmtpReplyError = Error & { responseCode: number };

/** An error carrying the SMTP reply code smtp-server should answer with. */
export function smtpError(responseCode: number, message: string): SmtpReplyError {
  return Object.assign(new Error(message), { responseCode });
}

const isSmtpReplyError = (err: unknown): err is SmtpReplyError =>
  err instanceof Error && typeof (err as { responseCode?: unknown }).responseCode === 'number';

const tooBig = (limit: number): SmtpReplyError => smtpError(552, `5.3.4 message too big: the limit is ${limit} bytes`);
const SHUTTING_DOWN = errorCodeSpec('INTAKE_CLOSING')!.smtp!.text;

export interface SmtpDoorSpec {
  door: StoreRequest['door'];
  /** Greeting host name. */
  name: string;
  banner: string;
  tls: { key: string; cert: string };
  maxMessageBytes: number;
  limits?: DoorLimits | undefined;
  logger: Logger;
  /** Door-specific authentication settings. */
  auth: Pick<SMTPServerOptions, 'authMethods' | 'authOptional' | 'allowInsecureAuth' | 'disabledCommands' | 'onAuth'>;
  /** Decides on one recipient; throws (smtpError) to refuse it. */
  acceptRecipient(address: SMTPServerAddress, session: SMTPServerSession, log: Logger): Promise<void> | void;
  /** Handles a complete message within the size limit; resolves with the text of the 250 reply. */
  deliver(raw: Buffer, session: SMTPServerSession, log: Logger): Promise<string>;
}

/** Per-server shutdown state, found by close(). */
interface DoorState {
  closing: boolean;
  closeTimeoutMs: number;
  /** Sessions with a transaction started (MAIL FROM accepted), keyed to that transaction's envelope. */
  transactions: Map<SMTPServerSession, object>;
}
const DOORS = new WeakMap<SMTPServer, DoorState>();

/** Recipients tried per transaction: smtp-server replaces `session.envelope` at every reset. */
const rcptAttempts = new WeakMap<object, number>();

/** Reads the DATA stream into one buffer, holding at most `limit` bytes; rejects with 552 or 451. */
export function readMessage(stream: SMTPServerDataStream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let over = false;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      // Over the limit: drop what we have but keep draining, so the client reads our 552.
      if (!over && (stream.sizeExceeded || bytes > limit)) {
        over = true;
        chunks.length = 0;
      }
      if (!over) chunks.push(chunk);
    });
    stream.once('error', (err) => reject(Object.assign(smtpError(451, '4.3.0 try again later'), { cause: err })));
    // The client went away mid-message: smtp-server destroys the stream, possibly without 'error'.
    stream.once('close', () => {
      if (!stream.readableEnded) reject(smtpError(451, '4.3.0 message incomplete'));
    });
    stream.once('end', () => (over || stream.sizeExceeded ? reject(tooBig(limit)) : resolve(Buffer.concat(chunks, bytes))));
  });
}

/** Stores the raw message through the intake; the 250 text names the stored id. */
export async function storeMessage(intake: IntakeService, req: StoreRequest): Promise<string> {
  const stored = await intake.store(req);
  return `2.0.0 stored as ${stored.id}${stored.duplicate ? ' (already received)' : ''}`;
}

/**
 * The reply for an AppError, from the error-code registry (src/domain/error-codes.ts): its SMTP
 * reply, or for a code with only a per-error `smtpCode`, that code with a generic text. Undefined
 * for an error the registry gives no SMTP meaning (the caller answers 451 and logs it).
 */
export function smtpReplyOf(err: unknown): SmtpReplyError | undefined {
  if (!isAppError(err)) return undefined;
  const reply = errorCodeSpec(err.code)?.smtp;
  if (reply && (err.smtpCode === undefined || err.smtpCode === reply.code)) return smtpError(reply.code, reply.text);
  if (err.smtpCode !== undefined) return smtpError(err.smtpCode, err.smtpCode >= 500 ? '5.0.0 refused' : '4.3.0 try again later');
  return undefined;
}

/** Maps whatever a door's work threw to the reply: its own code, the registry's for an AppError, else 451. */
function toReply(err: unknown, log: Logger): SmtpReplyError {
  if (isSmtpReplyError(err)) return err;
  const mapped = smtpReplyOf(err);
  if (mapped) {
    if (mapped.responseCode !== 421) log.warn({ err }, 'SMTP hook refused the message');
    return mapped;
  }
  log.error({ err }, 'SMTP hook failed');
  return smtpError(451, '4.3.0 try again later');
}

export function createSmtpDoor(spec: SmtpDoorSpec): SMTPServer {
  const limits = { ...DEFAULT_DOOR_LIMITS, ...spec.limits };
  const limit = spec.maxMessageBytes;
  const log = spec.logger;
  const state: DoorState = { closing: false, closeTimeoutMs: limits.closeTimeoutMs, transactions: new Map() };
  const sessionLog = (session: SMTPServerSession) => log.child({ smtpSession: session.id });

  const server: SMTPServer = new SMTPServer({
    ...spec.auth,
    name: spec.name,
    banner: spec.banner,
    key: spec.tls.key,
    cert: spec.tls.cert,
    size: limit,
    maxClients: limits.maxClients,
    maxRecipients: limits.maxRecipients,
    socketTimeout: limits.socketTimeoutMs,
    // close() below drains in-flight transactions itself; what is left after that is idle.
    closeTimeout: 1,
    // The client's host name is not used; a PTR lookup per connection would only add latency.
    disableReverseLookup: true,
    logger: false,

    onConnect(session, callback) {
      if (state.closing) {
        countSmtpReply(spec.door, 'connect', 421);
        return callback(smtpError(421, SHUTTING_DOWN));
      }
      callback();
    },

    onMailFrom(address, session, callback) {
      if (state.closing) {
        countSmtpReply(spec.door, 'mail', 421);
        return callback(smtpError(421, SHUTTING_DOWN));
      }
      // smtp-server checks SIZE against `size` too; kept here so the limit holds with hideSize.
      const declared = address.args ? Number(address.args.SIZE) : NaN;
      if (declared > limit) {
        countSmtpReply(spec.door, 'mail', 552);
        return callback(tooBig(limit));
      }
      state.transactions.set(session, session.envelope);
      callback();
    },

    onRcptTo(address, session, callback) {
      const tried = (rcptAttempts.get(session.envelope) ?? 0) + 1;
      rcptAttempts.set(session.envelope, tried);
      if (tried > limits.maxRecipients) {
        countSmtpReply(spec.door, 'rcpt', 452);
        return callback(smtpError(452, `4.5.3 too many recipients (at most ${limits.maxRecipients})`));
      }
      const slog = sessionLog(session);
      Promise.resolve()
        .then(() => spec.acceptRecipient(address, session, slog))
        .then(
          () => {
            countSmtpReply(spec.door, 'rcpt', 250);
            callback();
          },
          (err: unknown) => {
            const reply = toReply(err, slog);
            countSmtpReply(spec.door, 'rcpt', reply.responseCode);
            callback(reply);
          },
        );
    },

    onData(stream, session, callback) {
      const slog = sessionLog(session);
      readMessage(stream, limit)
        .then((raw) => spec.deliver(raw, session, slog))
        .then(
          (text) => {
            countSmtpReply(spec.door, 'data', 250);
            callback(null, text);
          },
          (err: unknown) => {
            const reply = toReply(err, slog);
            countSmtpReply(spec.door, 'data', reply.responseCode);
            if (reply.responseCode === 552) slog.info({ limit }, 'message refused: too big');
            callback(reply);
          },
        );
    },

    onClose(session) {
      state.transactions.delete(session);
    },
  });

  server.on('error', (err) => log.error({ err }, `SMTP ${spec.door} server error`));
  DOORS.set(server, state);
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Graceful stop: from now on new sessions and new transactions get 421, transactions already
 * under way (up to closeTimeoutMs) still get their answer; then the port closes and idle
 * sessions are told 421.
 */
export async function close(server: SMTPServer): Promise<void> {
  const state = DOORS.get(server);
  if (state) {
    state.closing = true;
    const deadline = Date.now() + state.closeTimeoutMs;
    // A transaction is live while its envelope is the session's current one (RSET and a
    // finished DATA replace it); closed sessions leave the map in onClose.
    const live = () => [...state.transactions].some(([session, envelope]) => session.envelope === envelope);
    while (live() && Date.now() < deadline) await sleep(25);
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
