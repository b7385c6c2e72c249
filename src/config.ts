// The one place that reads process.env: a zod schema turns the environment into a frozen,
// typed config object; a wrong value stops start-up with one line naming the variable.
import path from 'node:path';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const hostPortList = optionalString.pipe(
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[^\s:]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/, 'expected host:port')))
    .optional(),
);

/** `kid:secret` pairs; the first one signs, all of them verify (key rotation). */
const signingKeys = optionalString.pipe(
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(
      z
        .array(
          z
            .string()
            .regex(/^[A-Za-z0-9_-]{1,32}:.{32,}$/, 'expected kid:secret with a secret of at least 32 characters'),
        )
        .min(1),
    )
    .transform((pairs) =>
      pairs.map((p) => {
        const i = p.indexOf(':');
        return { kid: p.slice(0, i), secret: p.slice(i + 1) };
      }),
    )
    .optional(),
);

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  MONGODB_URI: optionalString.pipe(z.string().regex(/^mongodb(\+srv)?:\/\//, 'expected a mongodb:// URI').optional()),
  DATA_DIR: z.string().trim().min(1).default('./data'),
  HTTP_PORT: port.default(3000),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:3000'),
  SMTP_MX_PORT: port.default(2525),
  SMTP_SUBMISSION_PORT: port.default(2587),
  MAIL_DOMAIN: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'expected a domain name')
    .default('paymail.localhost'),
  OUTBOUND_SMTP_URL: optionalString.pipe(z.string().regex(/^smtps?:\/\//, 'expected smtp:// or smtps://').optional()),
  LINK_SIGNING_KEYS: signingKeys,
  DNS_SERVERS: hostPortList,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Cap 50 MiB: raw mail is stored in chunks (no 16 MiB document limit), but a message is held
  // in memory while it is received and again, decoded, while it is parsed.
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(10 * 1024 * 1024),
  MAX_LINK_LIFETIME_DAYS: z.coerce.number().int().min(1).max(365).default(60),
  SMTP_TLS_KEY_FILE: optionalString,
  SMTP_TLS_CERT_FILE: optionalString,
  FERRETDB_BIN: optionalString,
  // Diagnostics: log database commands slower than this (0 = off), to this file if set.
  SLOW_QUERY_MS: z.coerce.number().int().min(0).default(0),
  SLOW_QUERY_FILE: optionalString,
  // Tests only: kill the process (SIGKILL) when a state transition reaches this step boundary
  // (FAULT_POINTS in src/services/order-transitions.ts), to prove the crash repair.
  FAULT_POINT: optionalString,
  RECEIPT_SIGNING_KEY: optionalString,
  RECEIPT_SIGNING_KEY_FILE: optionalString,
  RECEIPT_PUBLIC_KEYS_FILE: optionalString,
  // DKIM signing of outgoing mail (d=MAIL_DOMAIN): a selector plus the private key or its file.
  DKIM_SELECTOR: optionalString.pipe(
    z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'expected a DNS label such as mail2025').optional(),
  ),
  DKIM_PRIVATE_KEY: optionalString,
  DKIM_PRIVATE_KEY_FILE: optionalString,
  TRUST_PROXY: z
    .enum(['true', 'false', '1', '0', ''], { message: 'expected true or false' })
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  // Webhooks to loopback/private/link-local targets: refused unless the operator opts in.
  WEBHOOK_ALLOW_PRIVATE: z
    .enum(['true', 'false', '1', '0', ''], { message: 'expected true or false' })
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
});

export type Env = z.input<typeof EnvSchema>;

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly production: boolean;
  readonly mongodbUri: string | undefined;
  readonly dataDir: string;
  readonly httpPort: number;
  readonly publicUrl: string;
  readonly smtpMxPort: number;
  readonly smtpSubmissionPort: number;
  readonly mailDomain: string;
  readonly outboundSmtpUrl: string | undefined;
  readonly linkSigningKeys: ReadonlyArray<{ kid: string; secret: string }> | undefined;
  readonly dnsServers: ReadonlyArray<string> | undefined;
  readonly logLevel: string;
  readonly maxMessageBytes: number;
  readonly maxLinkLifetimeDays: number;
  readonly smtpTls: { keyFile: string; certFile: string } | undefined;
  readonly ferretdbBin: string | undefined;
  /** Log database commands slower than this many ms (0: off); field names only, never values. */
  readonly slowQueryMs: number;
  readonly slowQueryFile: string | undefined;
  /** Tests only: the step boundary at which the process kills itself (refused in production). */
  readonly faultPoint: string | undefined;
  /** Ed25519 PKCS#8 PEM signing payment proofs (or the file holding it); generated in development. */
  readonly receiptSigningKey: string | undefined;
  readonly receiptSigningKeyFile: string | undefined;
  /** JWKS of retired receipt keys that must keep verifying. */
  readonly receiptPublicKeysFile: string | undefined;
  /** Behind a reverse proxy: take the client address from X-Forwarded-For (rate limits, logs). */
  readonly trustProxy: boolean;
  /** Let webhooks go to loopback, private, link-local… addresses (development and tests only). */
  readonly webhookAllowPrivate: boolean;
  /** DKIM signing of every outgoing mail for MAIL_DOMAIN; undefined when the relay signs (or nobody). */
  readonly dkim: { selector: string; privateKey: string | undefined; privateKeyFile: string | undefined } | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Builds the config from an environment (process.env by default); throws ConfigError. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const given = source[variable];
    const shown = variable === 'LINK_SIGNING_KEYS' || variable === 'RECEIPT_SIGNING_KEY' || variable === 'DKIM_PRIVATE_KEY' || given === undefined ? '' : ` (got "${given}")`;
    throw new ConfigError(`invalid ${variable}${shown}: ${issue.message}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  if (production && !e.LINK_SIGNING_KEYS) {
    throw new ConfigError('invalid LINK_SIGNING_KEYS: required when NODE_ENV=production (kid:secret,...)');
  }
  if (production && !e.PUBLIC_URL.startsWith('https://')) {
    throw new ConfigError(`invalid PUBLIC_URL (got "${e.PUBLIC_URL}"): must be https:// when NODE_ENV=production`);
  }
  if (Boolean(e.SMTP_TLS_KEY_FILE) !== Boolean(e.SMTP_TLS_CERT_FILE)) {
    throw new ConfigError('invalid SMTP_TLS_KEY_FILE/SMTP_TLS_CERT_FILE: set both or neither');
  }
  if (production && !e.OUTBOUND_SMTP_URL) {
    throw new ConfigError('invalid OUTBOUND_SMTP_URL: required when NODE_ENV=production (mail is only captured in development)');
  }
  if (production && !e.SMTP_TLS_KEY_FILE) {
    throw new ConfigError('invalid SMTP_TLS_CERT_FILE: required when NODE_ENV=production (with SMTP_TLS_KEY_FILE)');
  }
  if (production && e.FAULT_POINT) {
    throw new ConfigError('invalid FAULT_POINT: a test hook that kills the process; never set it when NODE_ENV=production');
  }
  if (e.RECEIPT_SIGNING_KEY && e.RECEIPT_SIGNING_KEY_FILE) {
    throw new ConfigError('invalid RECEIPT_SIGNING_KEY/RECEIPT_SIGNING_KEY_FILE: set one or neither');
  }
  if (production && !e.RECEIPT_SIGNING_KEY && !e.RECEIPT_SIGNING_KEY_FILE) {
    throw new ConfigError('invalid RECEIPT_SIGNING_KEY_FILE: required when NODE_ENV=production (or RECEIPT_SIGNING_KEY)');
  }
  if (e.DKIM_PRIVATE_KEY && e.DKIM_PRIVATE_KEY_FILE) {
    throw new ConfigError('invalid DKIM_PRIVATE_KEY/DKIM_PRIVATE_KEY_FILE: set one or neither');
  }
  if (Boolean(e.DKIM_SELECTOR) !== Boolean(e.DKIM_PRIVATE_KEY || e.DKIM_PRIVATE_KEY_FILE)) {
    throw new ConfigError('invalid DKIM_SELECTOR: set it together with DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE (or none of them)');
  }
  return Object.freeze({
    env: e.NODE_ENV,
    production,
    mongodbUri: e.MONGODB_URI,
    dataDir: path.resolve(e.DATA_DIR),
    httpPort: e.HTTP_PORT,
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    smtpMxPort: e.SMTP_MX_PORT,
    smtpSubmissionPort: e.SMTP_SUBMISSION_PORT,
    mailDomain: e.MAIL_DOMAIN,
    outboundSmtpUrl: e.OUTBOUND_SMTP_URL,
    linkSigningKeys: e.LINK_SIGNING_KEYS ? Object.freeze(e.LINK_SIGNING_KEYS) : undefined,
    dnsServers: e.DNS_SERVERS ? Object.freeze(e.DNS_SERVERS) : undefined,
    logLevel: e.LOG_LEVEL,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    maxLinkLifetimeDays: e.MAX_LINK_LIFETIME_DAYS,
    smtpTls:
      e.SMTP_TLS_KEY_FILE && e.SMTP_TLS_CERT_FILE
        ? Object.freeze({ keyFile: e.SMTP_TLS_KEY_FILE, certFile: e.SMTP_TLS_CERT_FILE })
        : undefined,
    ferretdbBin: e.FERRETDB_BIN,
    slowQueryMs: e.SLOW_QUERY_MS,
    slowQueryFile: e.SLOW_QUERY_FILE,
    faultPoint: e.FAULT_POINT,
    receiptSigningKey: e.RECEIPT_SIGNING_KEY,
    receiptSigningKeyFile: e.RECEIPT_SIGNING_KEY_FILE,
    receiptPublicKeysFile: e.RECEIPT_PUBLIC_KEYS_FILE,
    trustProxy: e.TRUST_PROXY,
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    dkim: e.DKIM_SELECTOR
      ? Object.freeze({ selector: e.DKIM_SELECTOR, privateKey: e.DKIM_PRIVATE_KEY, privateKeyFile: e.DKIM_PRIVATE_KEY_FILE })
      : undefined,
  });
}
