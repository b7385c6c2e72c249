// RFC 3834 ("Recommendations for Automatic Responses to Electronic Mail") on the receiving side:
// which inbound mails paymail must never answer. An answer to an auto-responder, a bounce or a
// mailing list starts or feeds a mail loop, so such a mail is recorded and left unanswered.
// Read from the raw header block (no MIME parse needed): the first value of each field counts.

export type AutomaticMailReason = 'auto-submitted' | 'precedence' | 'list' | 'null-sender' | 'mailer-daemon';

const HEADER_SCAN_LIMIT = 256 * 1024;
const WANTED = ['auto-submitted', 'precedence', 'list-id', 'from', 'return-path'] as const;

/** The unfolded values of a few header fields (lower-case names), from the raw header block. */
export function headerFields(raw: Buffer, names: readonly string[] = WANTED): Map<string, string> {
  const head = raw.subarray(0, Math.min(raw.length, HEADER_SCAN_LIMIT)).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? head : head.slice(0, end)).split(/\r?\n/);
  const out = new Map<string, string>();
  for (let i = 0; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(':');
    if (colon <= 0) continue;
    const name = lines[i]!.slice(0, colon).trim().toLowerCase();
    let value = lines[i]!.slice(colon + 1);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += ' ' + lines[++i]!.trim();
    if (names.includes(name) && !out.has(name)) out.set(name, value.trim());
  }
  return out;
}

/** The bare address of a From / Return-Path value (`Name <a@b>` or `a@b`), lower-cased. */
export function bareAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const angle = /<([^>]*)>/.exec(value);
  return (angle ? angle[1]! : value.replace(/\([^)]*\)/g, '')).trim().toLowerCase();
}

const SYSTEM_SENDERS = /^(mailer-daemon|postmaster)$/i;

/**
 * Why this mail must not be answered (RFC 3834 §2), or undefined for an ordinary mail:
 * `Auto-Submitted` other than `no` (auto-replied, auto-generated, auto-notified, …);
 * `Precedence: bulk|junk|list`; a `List-Id` (mailing-list traffic); the null reverse path
 * (`MAIL FROM:<>`, bounces and DSNs); a MAILER-DAEMON or postmaster sender.
 * `envelopeFrom`: '' for the null path, undefined when unknown.
 */
export function automaticMailReason(raw: Buffer, envelopeFrom: string | undefined): AutomaticMailReason | undefined {
  const h = headerFields(raw);
  const autoSubmitted = h.get('auto-submitted');
  // The keyword before any parameters or comment (`auto-replied; owner-email=…`).
  if (autoSubmitted !== undefined && autoSubmitted.split(/[;(\s]/)[0]!.toLowerCase() !== 'no') return 'auto-submitted';
  if (/^(bulk|junk|list)$/i.test(h.get('precedence') ?? '')) return 'precedence';
  if (h.has('list-id')) return 'list';
  if (envelopeFrom === '' || bareAddress(h.get('return-path')) === '') return 'null-sender';
  const senders = [envelopeFrom, bareAddress(h.get('from'))];
  if (senders.some((a) => a !== undefined && SYSTEM_SENDERS.test(a.split('@')[0] ?? ''))) return 'mailer-daemon';
  return undefined;
}

/** Whom a mail came from, for the per-sender loop brake: the From address, else the envelope's. */
export function senderAddress(raw: Buffer, envelopeFrom: string | undefined): string | undefined {
  const from = bareAddress(headerFields(raw, ['from']).get('from'));
  return from || envelopeFrom?.toLowerCase() || undefined;
}
