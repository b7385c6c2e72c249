// Outbound transport: relays through OUTBOUND_SMTP_URL with nodemailer, or, in development when
// no relay is configured, builds the message all the same and hands back a copy to capture for
// /dev/mail. The outbox worker decides what to store; this file only talks SMTP or MIME.
// Relayed mail goes through a pool of open connections (nodemailer `pool: true`): one TCP
// connection, STARTTLS and AUTH serve many mails instead of one each.
import nodemailer from 'nodemailer';
import { AppError } from '../domain/errors.ts';
import { type DkimSigning } from './dkim.ts';
import { type MailAttachment } from './preparers/types.ts';

export interface OutboundMessage {
  from: string;
  to: string[];
  cc: string[];
  replyTo?: string | undefined;
  inReplyTo?: string | undefined;
  references?: string[] | undefined;
  /** Fixed when the mail was enqueued, so a retry after a crash carries the same Message-ID. */
  messageId: string;
  /**
   * The SMTP envelope sender (MAIL FROM), the mail's own return path `bounce+<id>@MAIL_DOMAIN`
   * (src/domain/verp.ts), so a bounce names the mail it is about; the From header is unchanged.
   * Unset: nodemailer takes the From address.
   */
  returnPath?: string | undefined;
  /**
   * RFC 3834 marking: 'auto-replied' for an answer to someone's mail, 'auto-generated' for the
   * rest. Default: 'auto-replied' when the mail answers a message (inReplyTo), else 'auto-generated'.
   * Every mail paymail sends is automatic, so it is never left out.
   */
  autoSubmitted?: 'auto-generated' | 'auto-replied' | undefined;
  /** One-click unsubscribe URL (RFC 8058): List-Unsubscribe: <url> and List-Unsubscribe-Post: List-Unsubscribe=One-Click. */
  listUnsubscribe?: string | undefined;
  subject: string;
  html: string;
  text: string;
  attachments: MailAttachment[];
}

/** One attachment of a captured mail, as /dev/mail lists it and serves it for download. */
export interface CapturedAttachment {
  filename: string;
  contentType: string;
  size: number;
  /** An image the HTML shows by `cid:` (already a data: URL there): not a download, no content kept. */
  inline: boolean;
  /** The bytes; absent when inline or past MAX_CAPTURED_ATTACHMENT_BYTES. */
  content?: Buffer;
}

/** What /dev/mail shows; inline images are turned into data: URLs so the page needs no cid. */
export interface CapturedMail {
  from: string;
  to: string;
  cc: string;
  subject: string;
  html: string;
  text: string;
  /** In mail order, so an index names one attachment. */
  attachments: CapturedAttachment[];
}

/**
 * Bytes of attachment content one captured mail keeps (all its files together). The copy is one
 * database document (16 MiB at most) beside the HTML; a larger file is listed without a download.
 */
export const MAX_CAPTURED_ATTACHMENT_BYTES = 4 * 1024 * 1024;

function capturedAttachments(attachments: MailAttachment[]): CapturedAttachment[] {
  let kept = 0;
  return attachments.map((a) => {
    const inline = Boolean(a.cid) && a.disposition !== 'attachment';
    const entry: CapturedAttachment = { filename: a.filename, contentType: a.contentType, size: a.content.length, inline };
    if (!inline && kept + a.content.length <= MAX_CAPTURED_ATTACHMENT_BYTES) {
      kept += a.content.length;
      entry.content = a.content;
    }
    return entry;
  });
}

export type SendResult =
  | { mode: 'smtp'; response: string; accepted: string[]; rejected: string[] }
  | { mode: 'capture'; captured: CapturedMail; size: number };

export interface MailTransport {
  readonly mode: 'smtp' | 'capture';
  send(msg: OutboundMessage): Promise<SendResult>;
  close(): void;
}

export interface MailTransportOptions {
  outboundSmtpUrl?: string | undefined;
  production: boolean;
  /**
   * Upper bounds for one SMTP exchange. They must stay well below the worker's lease (60 s by
   * default): a send that outlives its lease could be claimed and sent again by another worker.
   */
  timeouts?: { connectionMs?: number; greetingMs?: number; socketMs?: number };
  /** Relay connections kept open and reused (OUTBOUND_SMTP_MAX_CONNECTIONS; default 5). */
  maxConnections?: number;
  /**
   * A pooled connection with no mail for this long is closed (default 5 s): a busy queue keeps its
   * connections, a quiet one holds none open at the relay (and a relay restart is not met with
   * stale connections).
   */
  idleMs?: number;
  /** DKIM-sign every mail (d= MAIL_DOMAIN; see src/mail/dkim.ts); unset when the relay signs. */
  dkim?: DkimSigning | undefined;
}

function addressList(list: string[]): string {
  return list.join(', ');
}

/** Replaces `cid:` image sources with data: URLs of the matching inline attachment. */
export function inlineCidImages(html: string, attachments: MailAttachment[]): string {
  const byCid = new Map(attachments.map((a) => [a.cid, a]));
  return html.replace(/(["'])cid:([^"']+)\1/g, (whole, quote: string, cid: string) => {
    const a = byCid.get(cid);
    return a ? `${quote}data:${a.contentType};base64,${a.content.toString('base64')}${quote}` : whole;
  });
}

function mailOptions(msg: OutboundMessage) {
  return {
    from: msg.from,
    // An explicit envelope replaces the one nodemailer derives, so it names every recipient too.
    ...(msg.returnPath ? { envelope: { from: msg.returnPath, to: msg.to, cc: msg.cc } } : {}),
    to: msg.to,
    cc: msg.cc.length > 0 ? msg.cc : undefined,
    replyTo: msg.replyTo || undefined,
    inReplyTo: msg.inReplyTo || undefined,
    references: msg.references && msg.references.length > 0 ? msg.references : undefined,
    messageId: msg.messageId,
    headers: {
      'Auto-Submitted': msg.autoSubmitted ?? (msg.inReplyTo ? 'auto-replied' : 'auto-generated'),
      ...(msg.listUnsubscribe ? { 'List-Unsubscribe': `<${msg.listUnsubscribe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } : {}),
    },
    subject: msg.subject,
    html: msg.html,
    text: msg.text,
    attachments: msg.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType,
      // Without a Content-ID a file goes to multipart/mixed, where clients list it as an attachment.
      ...(a.cid ? { cid: a.cid } : {}),
      contentDisposition: a.disposition ?? 'inline',
    })),
  };
}

/**
 * True when a relay refused this particular message for good (a 5xx at MAIL FROM, RCPT TO or
 * DATA): retrying the same bytes cannot help. 5xx answers about our own set-up (authentication,
 * TLS, connection) are not permanent for the mail: fixing the configuration fixes the send.
 */
export function isPermanentRejection(err: unknown): boolean {
  const e = err as { code?: unknown; responseCode?: unknown };
  return (
    typeof e?.responseCode === 'number' &&
    e.responseCode >= 500 &&
    e.responseCode < 600 &&
    (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')
  );
}

export function createMailTransport(opts: MailTransportOptions): MailTransport {
  if (!opts.outboundSmtpUrl) {
    if (opts.production) {
      throw new AppError('MAIL_TRANSPORT_MISSING', 'OUTBOUND_SMTP_URL is required when NODE_ENV=production');
    }
    // A real MIME build (not just a copy of the fields) so capture fails where a relay would.
    const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix', ...(opts.dkim ? { dkim: opts.dkim } : {}) });
    return {
      mode: 'capture',
      async send(msg) {
        const info = await builder.sendMail(mailOptions(msg));
        const size = Buffer.isBuffer(info.message) ? info.message.length : 0;
        return {
          mode: 'capture',
          size,
          captured: {
            from: msg.from,
            to: addressList(msg.to),
            cc: addressList(msg.cc),
            subject: msg.subject,
            html: inlineCidImages(msg.html, msg.attachments),
            text: msg.text,
            attachments: capturedAttachments(msg.attachments),
          },
        };
      },
      close() {
        builder.close();
      },
    };
  }

  const t = opts.timeouts ?? {};
  const smtp = nodemailer.createTransport({
    url: opts.outboundSmtpUrl,
    pool: true,
    maxConnections: opts.maxConnections ?? 5,
    // A connection is replaced after this many mails (nodemailer's default), so a relay's
    // per-session limits are never reached.
    maxMessages: 100,
    idleTimeout: opts.idleMs ?? 5_000,
    connectionTimeout: t.connectionMs ?? 15_000,
    greetingTimeout: t.greetingMs ?? 15_000,
    socketTimeout: t.socketMs ?? 30_000,
    ...(opts.dkim ? { dkim: opts.dkim } : {}),
  });
  return {
    mode: 'smtp',
    async send(msg) {
      const info = await smtp.sendMail(mailOptions(msg));
      return {
        mode: 'smtp',
        response: String(info.response ?? ''),
        accepted: (info.accepted ?? []).map(String),
        rejected: (info.rejected ?? []).map(String),
      };
    },
    close() {
      smtp.close();
    },
  };
}
