// The answers to a merchant's mail: the intake reply (orders created, duplicates, problems and
// notices per field) and the reply to a reply command (STATUS, CANCEL, RESEND, EXTEND).
import { formatMoney } from '../../domain/money.ts';
import { CommandReplyData, IntakeReplyData, parseMailData as parse } from '../contracts.ts';
import { fill, formatDateTime, pluralForm, replySubject } from '../format.ts';
import { type Preparer } from './types.ts';

export const intakeReplyPreparer: Preparer = (raw, _ctx, t) => {
  const d = parse(IntakeReplyData, 'intake-reply', raw);
  const fields = (t.fields && typeof t.fields === 'object' ? t.fields : {}) as Record<string, string>;
  const str = (k: string) => (typeof t[k] === 'string' ? (t[k] as string) : '');
  const newCount = d.created.filter((c) => !c.duplicate).length;
  const where = (p: { line?: number | null | undefined; row?: number | null | undefined }) =>
    [p.line != null ? fill(str('line'), { n: p.line }) : '', p.row != null ? fill(str('row'), { n: p.row }) : ''].filter(Boolean).join(', ');
  return {
    vars: {
      subject: replySubject(d.subject),
      created: newCount,
      duplicates: d.created.length - newCount,
      problems: d.problems.length,
      file: d.batch?.filename ?? '',
      rows: d.batch?.rows ?? 0,
    },
    ...(d.subject.trim() ? {} : { pick: { subject: 'subjectFallback' } }),
    view: {
      // Raw values: the template formats them with the money and datetime helpers.
      created: d.created.map((c) => ({
        reference: c.reference,
        amountMinor: c.amountMinor,
        currency: c.currency,
        link: c.link,
        expiresAt: c.expiresAt,
        duplicate: c.duplicate ? str('duplicate') : '',
        capped: c.capped ? str('capped') : '',
        deliveredTo: c.deliveredTo ? fill(str('deliveredTo'), { email: c.deliveredTo }) : '',
        where: c.row != null ? fill(str('row'), { n: c.row }) : '',
      })),
      problems: d.problems.map((p) => ({
        field: fields[p.field] ?? p.field,
        where: where(p),
        value: p.value == null ? '' : String(p.value),
        expected: p.message,
        code: p.code,
      })),
      notices: d.notices.map((p) => ({
        field: fields[p.field] ?? p.field,
        where: where(p),
        value: p.value == null ? '' : String(p.value),
        // Codes with a sentence of their own in the locale; the parser's words otherwise.
        text: (t.noticeText as Record<string, string> | undefined)?.[p.code] ?? p.message,
      })),
      batch: Boolean(d.batch),
    },
  };
};

export const commandReplyPreparer: Preparer = (raw, ctx, t) => {
  const d = parse(CommandReplyData, 'command-reply', raw);
  const group = (k: string) => (t[k] && typeof t[k] === 'object' ? (t[k] as Record<string, string>) : {});
  const attemptStrings = (t.attempts && typeof t.attempts === 'object' ? t.attempts : {}) as Record<string, unknown>;
  const o = d.order;
  const amount = o ? formatMoney(o.amountMinor, o.currency, ctx.intl) : '';
  const expires = o ? formatDateTime(o.expiresAt, ctx.intl, ctx.timeZone) : '';
  const status = o ? (group('statuses')[o.status] ?? o.status) : '';
  const vars = {
    subject: replySubject(d.subject),
    command: d.command,
    reference: o?.reference ?? d.reference,
    argument: d.argument,
    amount,
    expires,
    status,
    resentTo: d.resentTo,
    message: d.message,
    previousExpires: d.previousExpiresAt ? formatDateTime(d.previousExpiresAt, ctx.intl, ctx.timeZone) : '',
    // CANCEL of a partly paid order (issue 13 part 1): "what was paid (300.00 EUR)".
    paid: d.paidMinor != null && o ? formatMoney(d.paidMinor, o.currency, ctx.intl) : '',
    // BALANCE (issue 13 part 1): "the balance of 700.00 EUR", "instalment 2 of 3 (333.34 EUR)".
    part: d.part && o ? fill(group('parts')[d.part.kind] ?? group('parts').balance ?? '', { seq: d.part.seq, of: d.part.of, amount: formatMoney(d.part.amountMinor, o.currency, ctx.intl) }) : '',
  };
  const a = o?.attempts;
  const attempts = !a
    ? ''
    : a.total === 0
      ? (group('attempts').none ?? '')
      : fill(pluralForm(attemptStrings.summary, a.total, ctx.intl), { total: a.total, declined: a.declined }) +
        (a.lastOutcome && a.lastAt
          ? ' ' +
            fill(group('attempts').last ?? '', {
              outcome: group('attemptOutcomes')[a.lastOutcome] ?? a.lastOutcome,
              at: formatDateTime(a.lastAt, ctx.intl, ctx.timeZone),
            })
          : '');
  return {
    vars,
    ...(d.subject.trim() ? {} : { pick: { subject: 'subjectFallback' } }),
    view: {
      outcome: fill(group('outcomes')[d.code] ?? d.code, vars),
      capped: d.capped ? (typeof t.capped === 'string' ? t.capped : '') : '',
      order: o
        ? {
            reference: o.reference,
            status,
            amount,
            expires,
            link: o.link,
            paidAt: o.paidAt ? formatDateTime(o.paidAt, ctx.intl, ctx.timeZone) : '',
            attempts,
          }
        : null,
    },
  };
};
