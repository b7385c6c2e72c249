// Reading bounces: what a delivery status notification (RFC 3464 `multipart/report;
// report-type=delivery-status`) or a plain non-DSN bounce says about the recipients of a mail.
// The message/delivery-status part is found in the raw bytes by a small MIME walk (mailparser
// folds it into the text body), its header-like fields are read per RFC 3464 §2 (a per-message
// block, then one block per recipient, continuation lines unfolded). A bounce without that part
// (qmail, old Gmail, hand-made) is read best-effort from its text: a failure or delay phrase, the
// SMTP reply and enhanced status code, the failed address. Only permanent failures count as
// undeliverable (Action: failed, or a 5.x.x status); delays are reported as such.

export type BounceOutcome = 'failed' | 'delayed' | 'none';

export interface BounceRecipient {
  /** Final-Recipient (or Original-Recipient) address, lower case; absent when not given. */
  recipient?: string;
  /** Original-Recipient when it differs (the address before an alias or forward expanded it). */
  original?: string;
  /** Action as given (failed, delayed, delivered, relayed, expanded), lower case. */
  action?: string;
  /** Enhanced status code (RFC 3463), e.g. 5.1.1. */
  status?: string;
  /** Diagnostic-Code text without its type, unfolded, or the SMTP reply a plain bounce quotes. */
  diagnostic?: string;
  outcome: BounceOutcome;
}

export interface BounceReport {
  format: 'dsn' | 'plain';
  recipients: BounceRecipient[];
}

export interface BounceInput {
  raw: Buffer;
  /** The decoded text body (mailparser), for bounces without a delivery-status part. */
  text?: string | undefined;
  subject?: string | undefined;
  /** The X-Failed-Recipients header (Exim, Gmail), comma-separated addresses. */
  failedRecipients?: string | undefined;
}

/** The bounce's verdict on one mail: what happened, to whom, and why. */
export interface BounceVerdict {
  outcome: BounceOutcome;
  recipient?: string;
  status?: string;
  /** A short, human reason (the remote server's words, or the status code's meaning). */
  reason: string;
}

const MAX_REASON = 300;
const MAX_SCAN_BYTES = 2 * 1024 * 1024;
const MAX_DEPTH = 6;

// ---------------------------------------------------------------------------------------------
// A minimal MIME walk over the raw bytes: enough to find one part by its content type.

interface Part {
  headers: Map<string, string>;
  body: string;
}

function splitHeaders(text: string): Part {
  const m = /\r?\n\r?\n/.exec(text);
  const head = m ? text.slice(0, m.index) : text;
  const body = m ? text.slice(m.index + m[0].length) : '';
  return { headers: headerMap(head), body };
}

/** Header-like fields: lower-case names, continuation lines unfolded; the first of each name wins. */
function headerMap(block: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let value = '';
  const flush = () => {
    if (name !== undefined && !out.has(name)) out.set(name, value.trim());
  };
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && name !== undefined) {
      value += '\n' + line;
      continue;
    }
    const colon = line.indexOf(':');
    flush();
    name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : undefined;
    value = colon > 0 ? line.slice(colon + 1) : '';
  }
  flush();
  return out;
}

function contentType(headers: Map<string, string>): { type: string; boundary?: string } {
  const v = headers.get('content-type') ?? 'text/plain';
  const type = v.split(';')[0]!.trim().toLowerCase();
  const b = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(v);
  const boundary = b ? (b[1] ?? b[2]) : undefined;
  return boundary ? { type, boundary } : { type };
}

function decodeBody(part: Part): string {
  const cte = (part.headers.get('content-transfer-encoding') ?? '').toLowerCase();
  if (cte === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const bytes = Buffer.from(part.body.replace(/=\r?\n/g, ''), 'latin1');
    const out: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const hex = bytes[i] === 0x3d ? bytes.subarray(i + 1, i + 3).toString('latin1') : '';
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 2;
      } else out.push(bytes[i]!);
    }
    return Buffer.from(out).toString('utf8');
  }
  return part.body;
}

/** The first part (depth first) whose type is one of `types`, decoded; undefined when none. */
function findPart(part: Part, types: readonly string[], depth = 0): string | undefined {
  const ct = contentType(part.headers);
  if (types.includes(ct.type)) return decodeBody(part);
  if (!ct.type.startsWith('multipart/') || !ct.boundary || depth >= MAX_DEPTH) return undefined;
  const delimiter = `--${ct.boundary}`;
  const pieces = part.body.split(new RegExp(`^${escapeRe(delimiter)}(?:--)?[ \\t]*\\r?$`, 'm'));
  // pieces[0] is the preamble; the last one after the closing delimiter is the epilogue.
  for (const piece of pieces.slice(1)) {
    const found = findPart(splitHeaders(piece.replace(/^\r?\n/, '')), types, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------
// RFC 3464 fields.

/** `rfc822; a@b` → `a@b`: the value after the address/diagnostic type. */
function typed(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const semi = value.indexOf(';');
  const v = (semi >= 0 ? value.slice(semi + 1) : value).trim();
  return v === '' ? undefined : v;
}

function cleanAddress(value: string | undefined): string | undefined {
  const v = typed(value);
  if (!v) return undefined;
  const angle = /<([^>]+)>/.exec(v);
  const addr = (angle ? angle[1]! : v).trim().toLowerCase();
  return /^[^\s@]+@[^\s@]+$/.test(addr) ? addr : undefined;
}

/**
 * A Diagnostic-Code as one readable line: folding undone, and the `550-5.1.1` prefixes a
 * multi-line SMTP reply repeats on every line (Gmail) kept only once.
 */
export function cleanDiagnostic(value: string | undefined): string | undefined {
  const v = typed(value);
  if (!v) return undefined;
  const lines = v.split(/\r?\n/).map((l) => l.trim());
  const first = lines[0]!;
  const rest = lines.slice(1).map((l) => l.replace(/^\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3}\s+)?/, ''));
  return clip([first, ...rest].join(' ').replace(/\s+/g, ' ').trim());
}

const clip = (s: string) => (s.length > MAX_REASON ? `${s.slice(0, MAX_REASON - 1)}…` : s);

function outcomeOf(action: string | undefined, status: string | undefined): BounceOutcome {
  if (action === 'failed') return 'failed';
  if (action === 'delayed') return 'delayed';
  if (action) return 'none';
  if (status?.startsWith('5.')) return 'failed';
  if (status?.startsWith('4.')) return 'delayed';
  return 'none';
}

/** The per-recipient blocks of a message/delivery-status body. */
export function parseDeliveryStatus(body: string): BounceRecipient[] {
  const blocks = body
    .replace(/\r\n/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((b) => b.trim())
    .filter(Boolean);
  const out: BounceRecipient[] = [];
  for (const block of blocks) {
    const f = headerMap(block);
    if (!f.has('final-recipient') && !f.has('original-recipient') && !f.has('action')) continue;
    const status = /^([245])\.\d{1,3}\.\d{1,3}/.exec(f.get('status') ?? '')?.[0];
    const action = f.get('action')?.split(/[\s(;]/)[0]?.toLowerCase();
    const original = cleanAddress(f.get('original-recipient'));
    const recipient = cleanAddress(f.get('final-recipient')) ?? original;
    const diagnostic = cleanDiagnostic(f.get('diagnostic-code'));
    out.push({
      ...(recipient ? { recipient } : {}),
      ...(original && original !== recipient ? { original } : {}),
      ...(action ? { action } : {}),
      ...(status ? { status } : {}),
      ...(diagnostic ? { diagnostic } : {}),
      outcome: outcomeOf(action, status),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plain bounces: text heuristics.

/** Where a plain bounce starts quoting the returned mail: nothing below is the bounce's own text. */
const ORIGINAL_MARKERS =
  /^\s*(?:-+ ?Below this line is a copy of the message|-+ ?This is a copy of the message|-+ ?Original message -+|-+ ?Returned message -+|Original message headers:|-+ ?The header of the original message)/im;

const DELAY_PHRASES = /(this is a warning only|will be retried|delayed mail|delivery (?:has been |is )?delayed|still (?:being )?(?:retried|trying)|not yet been delivered|will (?:keep )?try(?:ing)? (?:again|to deliver))/i;

const FAILURE_PHRASES =
  /(could ?n[o']t be delivered|was ?n[o']t (?:able to )?deliver|wasn't able to deliver|failed permanently|permanent (?:error|failure)|delivery (?:has )?failed|undeliverable|undelivered mail|returned to sender|user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|mailbox (?:unavailable|not found|disabled)|recipient address rejected|address not found|recipient not found|address rejected)/i;

const FAILURE_SUBJECTS = /(undeliver|delivery status notification \(failure\)|failure notice|returned mail|mail delivery failed|delivery failure|non-?delivery)/i;

function plainRecipients(input: BounceInput, text: string): BounceRecipient[] {
  const delayed = DELAY_PHRASES.test(text) || /delayed|warning/i.test(input.subject ?? '');
  const failed = !delayed && (FAILURE_PHRASES.test(text) || FAILURE_SUBJECTS.test(input.subject ?? ''));
  if (!delayed && !failed) return [];
  // The remote server's reply: the first line quoting an SMTP code, from the code on.
  const replyLine = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => /\b[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3}\b)?/.test(l) && !/^\d{1,2}:\d\d/.test(l));
  const reply = replyLine ? /\b[45]\d\d[ -].*$/.exec(replyLine)?.[0] : undefined;
  const status = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply ?? text)?.[1];
  const outcome: BounceOutcome = delayed ? 'delayed' : status?.startsWith('4.') ? 'delayed' : 'failed';
  const listed = (input.failedRecipients ?? '')
    .split(',')
    .map((a) => cleanAddress(a))
    .filter((a): a is string => !!a);
  // qmail and most plain bounces name the address as `<a@b>:` on a line of its own.
  const named = [...text.matchAll(/^\s*<([^<>\s@]+@[^<>\s@]+)>:?/gm)].map((m) => m[1]!.toLowerCase());
  const addresses = [...new Set([...listed, ...named])];
  const base = { outcome, ...(status ? { status } : {}), ...(reply ? { diagnostic: clip(reply.replace(/\s+/g, ' ')) } : {}) };
  return addresses.length > 0 ? addresses.map((recipient) => ({ recipient, ...base })) : [base];
}

/**
 * What a bounce reports: the delivery-status part when there is one (format 'dsn'), else what
 * its text says (format 'plain'). No recipients: not a bounce (an auto-reply, a success notice).
 */
export function readBounce(input: BounceInput): BounceReport {
  const scanned = input.raw.subarray(0, Math.min(input.raw.length, MAX_SCAN_BYTES)).toString('latin1');
  const status = findPart(splitHeaders(scanned), ['message/delivery-status', 'message/global-delivery-status']);
  if (status !== undefined) {
    const recipients = parseDeliveryStatus(status);
    if (recipients.length > 0) return { format: 'dsn', recipients };
  }
  const text = (input.text ?? '').split(ORIGINAL_MARKERS)[0] ?? '';
  return { format: 'plain', recipients: plainRecipients(input, text) };
}

const STATUS_MEANINGS: Array<[RegExp, string]> = [
  [/^\d\.1\.1$/, 'the mailbox does not exist'],
  [/^\d\.1\.2$/, 'the domain does not exist'],
  [/^\d\.1\.10$/, 'the recipient was not found'],
  [/^\d\.2\.1$/, 'the mailbox is disabled'],
  [/^\d\.2\.2$/, 'the mailbox is full'],
  [/^\d\.4\.\d+$/, 'the receiving server could not be reached'],
  [/^\d\.7\.\d+$/, 'the receiving server refused the message'],
];

function meaning(status: string | undefined): string {
  if (!status) return 'undeliverable';
  const m = STATUS_MEANINGS.find(([re]) => re.test(status));
  return m ? `${m[1]} (${status})` : `status ${status}`;
}

/**
 * The bounce's verdict for a mail sent to `candidates` (its To and Cc): the report line about one
 * of them, a failure before a delay; a report naming nobody we sent to falls back to its first
 * line and, for a plain bounce without any address, to the mail's first recipient (the VERP
 * address already says which mail bounced).
 */
export function verdictFor(report: BounceReport, candidates: readonly string[]): BounceVerdict {
  const ours = new Set(candidates.map((c) => c.toLowerCase()));
  const rank = (r: BounceRecipient) => (r.outcome === 'failed' ? 0 : r.outcome === 'delayed' ? 1 : 2);
  const sorted = [...report.recipients].sort((a, b) => rank(a) - rank(b));
  // Ours under either name: a forward or alias on the far side reports the expanded address as
  // Final-Recipient and the one we sent to as Original-Recipient.
  const ourName = (r: BounceRecipient) => [r.recipient, r.original].find((a) => a !== undefined && ours.has(a));
  const line = sorted.find((r) => ourName(r)) ?? sorted[0];
  if (!line) return { outcome: 'none', reason: '' };
  const recipient = ourName(line) ?? line.recipient ?? candidates[0]?.toLowerCase();
  return {
    outcome: line.outcome,
    ...(recipient ? { recipient } : {}),
    ...(line.status ? { status: line.status } : {}),
    reason: line.diagnostic ?? meaning(line.status),
  };
}
