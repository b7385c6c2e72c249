// Structured logs (pino). Card data is redacted by path, and card-like digit runs are masked in
// the whole record as written (message, nested fields, error message and stack), so a stray log
// line cannot leak a number.
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'card.number', 'card.cvc', '*.card.number', '*.card.cvc', 'number', 'cvc', 'body.number', 'body.cvc',
  'password', '*.password', 'smtpPassword', 'adminPassword', 'webhookSecret', 'secret', '*.secret',
];

const MIN_PAN = 13;
const MAX_PAN = 19;

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

const mask = (digits: string): string => `${digits.slice(0, 6)}******${digits.slice(-4)}`;

/** Digit groups joined by single spaces or dashes ("4242 4242 4242 4242", "3782-822463-10005"). */
const DIGIT_RUN = /\d+(?:[ -]\d+)*/g;

/**
 * Masks every run of 13–19 digits (written with or without spaces or dashes) that passes Luhn,
 * keeping the BIN and the last four. Within a longer run of groups ("order 12 4242 4242 …") the
 * card may start or end at any group boundary, so spans of whole groups are tried, leftmost and
 * longest first. Text around a number, separators included, is left as it was.
 */
export function maskPan(text: string): string {
  return text.replace(DIGIT_RUN, (run) => {
    const groups = run.split(/[ -]/);
    if (groups.length === 1) return run.length >= MIN_PAN && run.length <= MAX_PAN && luhn(run) ? mask(run) : run;
    const seps = run.match(/[ -]/g)!;
    let out = '';
    for (let i = 0; i < groups.length; ) {
      let end = -1;
      let digits = '';
      for (let j = i, acc = ''; j < groups.length; j++) {
        acc += groups[j];
        if (acc.length > MAX_PAN) break;
        if (acc.length >= MIN_PAN && luhn(acc)) [end, digits] = [j, acc];
      }
      if (end < 0) {
        out += groups[i] + (seps[i] ?? '');
        i++;
      } else {
        out += mask(digits) + (seps[end] ?? '');
        i = end + 1;
      }
    }
    return out;
  });
}

// The finished JSON line: string literals, and bare numbers after ':' ',' '[' (a PAN logged as a
// number). Masking there covers nested fields, error messages and stacks, bindings alike.
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|(?<=[:,[])\d{13,19}(?=[,\]}])/g;
const CANDIDATE = /\d(?:[ -]?\d){12}/;
/** Any 13 digits outside pino's "time" field: most lines have none and are written as they are. */
const ANY_CANDIDATE = /(?<!"time":\d*)\d(?:[ -]?\d){12}/;

function maskJsonLine(line: string): string {
  if (!ANY_CANDIDATE.test(line)) return line;
  return line.replace(JSON_TOKEN, (tok, offset: number) => {
    if (tok.startsWith('"')) return CANDIDATE.test(tok) ? maskPan(tok) : tok;
    // pino's own epoch-milliseconds "time" is 13 digits and sometimes passes Luhn.
    if (line.startsWith('"time":', offset - 7) || !luhn(tok)) return tok;
    return `"${mask(tok)}"`;
  });
}

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'paymail' },
      redact: { paths: REDACT, censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskPan(a) : a)) as typeof args;
          method.apply(this, masked);
        },
        streamWrite: maskJsonLine,
      },
    },
    destination,
  );
}
