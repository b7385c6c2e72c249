// Structured logs (pino). Card data is redacted by path, and card-like digit runs are masked in
// any message, so a stray log line cannot leak a number.
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'card.number', 'card.cvc', '*.card.number', '*.card.cvc', 'number', 'cvc', 'body.number', 'body.cvc',
  'password', '*.password', 'smtpPassword', 'adminPassword', 'webhookSecret', 'secret', '*.secret',
];

/** Masks 12–19 digit runs (with spaces or dashes) that look like card numbers. */
export function maskPan(text: string): string {
  return text.replace(/\b(?:\d[ -]?){12,19}\b/g, (m) => {
    const d = m.replace(/\D/g, '');
    return d.length >= 12 ? `${d.slice(0, 6)}******${d.slice(-4)}` : m;
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
      },
    },
    destination,
  );
}
