// Reply commands a merchant may mail instead of an order: `STATUS <ref>`, `CANCEL <ref>`,
// `RESEND <ref>`, `RESEND <ref> new@address` (issue 13 part 8: the pay-link to a corrected customer
// address), `CANCEL <ref> REFUND|KEEP` (a partly paid order), `EXTEND <ref> <duration>`, `BALANCE <ref> [<duration>]` (issue 13 part 1: the next part of an
// order paid in parts), in the subject (after any "Re:"/"AW:"… prefixes) or
// as the first non-empty line of the body. Case-insensitive. The line must be the command and
// nothing else, so a sentence such as "Cancel the blue one please" is never taken for one.
import { htmlToText } from './html-to-text.ts';
import { stripSubjectPrefixes } from './order-mail.ts';

export const COMMAND_VERBS = ['STATUS', 'CANCEL', 'RESEND', 'EXTEND', 'BALANCE'] as const;
export type CommandVerb = (typeof COMMAND_VERBS)[number];

export interface ParsedCommand {
  verb: CommandVerb;
  reference: string;
  /** EXTEND's (and BALANCE's) duration or date ("3 days", "48h", "2026-12-31"), RESEND's new address; absent when not given. */
  argument?: string;
  from: 'subject' | 'body';
}

// A reference is one token (what order mails accept, minus spaces); a duration is at most a few words.
const LINE = /^(status|cancel|resend|extend|balance)\s+([^\s<>]{1,64})(?:\s+(\S.{0,39}))?$/i;

/** `RESEND <ref> <address>`: an address may be longer than LINE's short argument. */
const RESEND_TO_LINE = /^(resend)\s+([^\s<>]{1,64})\s+(\S{1,254})$/i;

function fromLine(line: string, from: ParsedCommand['from']): ParsedCommand | undefined {
  // Bold or quoted by a mail client ("*STATUS A-1*"): the markers are no part of the command.
  const bare = line.trim().replace(/^[*_]+|[*_]+$/g, '').trim();
  const m = LINE.exec(bare) ?? RESEND_TO_LINE.exec(bare);
  if (!m) return undefined;
  const verb = m[1]!.toUpperCase() as CommandVerb;
  const argument = m[3]?.trim();
  // RESEND takes one address (`new@address`, `<new@address>`, `mailto:new@address`); a sentence
  // after it ("resend it tomorrow") is no command. A malformed address still is one: the reply
  // names the problem.
  if (verb === 'RESEND' && argument !== undefined && !/^\S*@\S*$/.test(argument)) return undefined;
  // CANCEL <ref> REFUND | KEEP (issue 13 part 1): what becomes of what a partly paid order was paid.
  if (verb === 'CANCEL' && argument !== undefined) return /^(refund|keep)$/i.test(argument) ? { verb, reference: m[2]!, argument: argument.toUpperCase(), from } : undefined;
  if (verb !== 'EXTEND' && verb !== 'RESEND' && verb !== 'BALANCE' && argument !== undefined) return undefined;
  // BALANCE is also a word of order mails ("Balance due: 2026-12-01") and of sentences ("Balance
  // of the account"): a command only with a reference that is no field label and a lifetime
  // that starts with a digit ("10 days", "2026-12-31").
  if (verb === 'BALANCE' && (m[2]!.endsWith(':') || (argument !== undefined && !/^\d/.test(argument)))) return undefined;
  return { verb, reference: m[2]!, ...(argument ? { argument } : {}), from };
}

/** The first line with text that is not quoted history. */
function firstLine(text: string): string {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    if (line !== '' && !line.startsWith('>')) return line.slice(0, 200);
    start = end + 1;
  }
  return '';
}

export function parseCommand(mail: { subject?: string | undefined; text?: string | undefined; html?: string | false | undefined }): ParsedCommand | undefined {
  const subject = fromLine(stripSubjectPrefixes(mail.subject ?? ''), 'subject');
  if (subject) return subject;
  let body = mail.text ?? '';
  // Only the start of the body matters: an HTML-only mail converts a bounded prefix.
  if (body.trim() === '' && typeof mail.html === 'string') body = htmlToText(mail.html.slice(0, 20_000));
  return fromLine(firstLine(body), 'body');
}
