// MIME parsing of inbound mail, off the main event loop: this file is the body of each worker of
// the parse pool (src/mail/parse-pool.ts). `parseInboundMail` is also exported so the pool's
// "main thread" mode (benchmark baseline) and the worker run exactly the same code.
import { parentPort, workerData } from 'node:worker_threads';
import { simpleParser, type Attachment, type ParsedMail } from 'mailparser';

/** An attachment as intake sees it: its bytes plus the metadata mailparser found. */
export type InboundAttachment = Pick<Attachment, 'filename' | 'contentType' | 'contentDisposition' | 'cid' | 'contentId' | 'checksum' | 'size' | 'related'> & {
  content: Buffer;
};

/**
 * What intake gets from a parse: ParsedMail's fields (same names, same types, so code written
 * against simpleParser keeps working) minus what cannot cross a thread (attachment streams and
 * per-attachment header maps); every value here survives the structured clone.
 */
export type ParsedInboundMail = Omit<ParsedMail, 'attachments' | 'textAsHtml'> & {
  attachments: InboundAttachment[];
  /** true when `text` or `html` was cut at MAX_BODY_CHARS. */
  bodyTruncated: boolean;
};

/**
 * Longest text or HTML body handed on. The label parser runs on the main thread at ~65 ms per MB
 * of text and ~110 ms per MB of HTML, so a 10 MB body would still freeze it for a second after
 * the MIME parse moved to a worker; order lines sit at the top of a mail, and batches come as
 * attachments (never cut), so 256 Ki characters is far more than any order needs.
 */
export const MAX_BODY_CHARS = 256 * 1024;

const cut = (s: string | undefined): string | undefined => (s !== undefined && s.length > MAX_BODY_CHARS ? s.slice(0, MAX_BODY_CHARS) : s);

/** Marks a worker started by the pool, so importing this file elsewhere starts no listener. */
export const PARSE_WORKER_MARK = 'paymail-parse-worker';

export type ParseRequest = { id: number; raw: Uint8Array };
export type ParseReply = { id: number; mail: ParsedInboundMail } | { id: number; error: string };

export async function parseInboundMail(raw: Buffer): Promise<ParsedInboundMail> {
  const mail = await simpleParser(raw, {
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
  });
  const { attachments, textAsHtml: _unused, text, html, ...rest } = mail;
  const bodyTruncated = (text?.length ?? 0) > MAX_BODY_CHARS || (typeof html === 'string' && html.length > MAX_BODY_CHARS);
  const cutText = cut(text);
  return {
    ...rest,
    ...(cutText !== undefined ? { text: cutText } : {}),
    html: typeof html === 'string' ? cut(html)! : html,
    bodyTruncated,
    attachments: attachments.map((a) => ({
      ...(a.filename !== undefined ? { filename: a.filename } : {}),
      contentType: a.contentType,
      contentDisposition: a.contentDisposition,
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.contentId !== undefined ? { contentId: a.contentId } : {}),
      checksum: a.checksum,
      size: a.size,
      related: a.related,
      content: a.content,
    })),
  };
}

/** Buffers arrive as plain Uint8Arrays after a structured clone; give intake Buffers again. */
export function reviveBuffers(mail: ParsedInboundMail): ParsedInboundMail {
  for (const a of mail.attachments) {
    const c = a.content as Uint8Array;
    if (!Buffer.isBuffer(c)) a.content = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
  return mail;
}

const port = parentPort;
if (port && (workerData as { mark?: string } | null)?.mark === PARSE_WORKER_MARK) {
  port.on('message', (req: ParseRequest) => {
    const raw = Buffer.from(req.raw.buffer, req.raw.byteOffset, req.raw.byteLength);
    parseInboundMail(raw).then(
      // Structured clone copies the bytes once; a 15 MB message costs a few ms of memcpy.
      (mail) => port.postMessage({ id: req.id, mail } satisfies ParseReply),
      (err: unknown) => port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies ParseReply),
    );
  });  // One small parse first, so the lazy parts of mailparser (charset tables…) are loaded before
  // the pool starts counting deadlines.
  void parseInboundMail(Buffer.from('Subject: warm-up\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nx'))
    .catch(() => undefined)
    .then(() => port.postMessage('ready'));
}
