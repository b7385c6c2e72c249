// A real SMTP server on 127.0.0.1 that stands in for the outbound relay: it accepts mail and keeps
// the parsed messages so tests can read what paymail sent. `rejectWith` makes it answer DATA with an
// SMTP error code (after reading the message, so every attempt's Message-ID is observed).
import { simpleParser, type ParsedMail } from 'mailparser';
import { type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface SinkMail {
  envelope: { from: string; to: string[] };
  /** Envelope recipients (shortcut for envelope.to). */
  to: string[];
  messageId: string;
  raw: Buffer;
  parsed: ParsedMail;
}

export interface SmtpSink {
  port: number;
  url: string;
  /** Accepted mails, in order of arrival. */
  mails: SinkMail[];
  /** Alias of `mails`. */
  received: SinkMail[];
  /** Message-ID of every DATA attempt, accepted or refused. */
  attempts: string[];
  /** Decides per attempt (1-based count) whether to refuse with an SMTP code. */
  rejectWith(fn: (attempt: number) => number | undefined): void;
  reset(): void;
  /** Resolves when `predicate` matches a received mail (checks earlier mails too). */
  waitFor(predicate: (m: SinkMail) => boolean, timeoutMs?: number): Promise<SinkMail>;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: SinkMail[] = [];
  const attempts: string[] = [];
  let reject: (attempt: number) => number | undefined = () => undefined;
  const waiters: Array<{ p: (m: SinkMail) => boolean; resolve: (m: SinkMail) => void }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw, { skipImageLinks: true }).then(
          (parsed) => {
            attempts.push(parsed.messageId ?? '');
            const code = reject(attempts.length);
            if (code) {
              return cb(Object.assign(new Error(code >= 500 ? 'mailbox unavailable' : 'try again later'), { responseCode: code }));
            }
            const to = session.envelope.rcptTo.map((r) => r.address);
            const mail: SinkMail = {
              envelope: { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to },
              to,
              messageId: parsed.messageId ?? '',
              raw,
              parsed,
            };
            mails.push(mail);
            for (const w of [...waiters]) {
              if (w.p(mail)) {
                waiters.splice(waiters.indexOf(w), 1);
                w.resolve(mail);
              }
            }
            cb();
          },
          (err: Error) => cb(err),
        );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    received: mails,
    attempts,
    rejectWith(fn) {
      reject = fn;
    },
    reset() {
      mails.length = 0;
      attempts.length = 0;
      reject = () => undefined;
    },
    waitFor(predicate, timeoutMs = 15_000) {
      const found = mails.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { p: predicate, resolve: (m: SinkMail) => (clearTimeout(t), resolve(m)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching mail within ${timeoutMs} ms (${mails.length} received)`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
