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
  // Open connections to the relay, reused for many mails (one STARTTLS and AUTH each, not per mail).
  OUTBOUND_SMTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(100).default(5),
  // Outbox mails the work runner sends at once (at most one per relay connection is useful). 1 keeps
  // strict creation order and at most one mail repeated after a crash; more trade that for throughput.
  OUTBOX_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(1),
  // Webhook deliveries the work runner makes at once (a slow merchant must not hold the others up).
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(4),
  // Inbound messages the work runner processes at once (MIME parsing runs in the parse pool).
  INTAKE_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(4),
  LINK_SIGNING_KEYS: signingKeys,
  // Encrypts acquirer secrets at rest (AES-256-GCM): 32 bytes, hex or base64. Generated into DATA_DIR in development.
  SECRETS_KEY: optionalString.pipe(
    z.string().regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/, 'expected 32 bytes as 64 hex digits or base64 (openssl rand -hex 32)').optional(),
  ),
  DNS_SERVERS: hostPortList,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Cap 50 MiB: raw mail is stored in chunks (no 16 MiB document limit), but a message is held
  // in memory while it is received and again, decoded, while it is parsed.
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(10 * 1024 * 1024),
  MAX_LINK_LIFETIME_DAYS: z.coerce.number().int().min(1).max(365).default(60),
  // Server API (/api/v1): requests per API key and minute, counted across instances in the database.
  API_RATE_LIMIT: z.coerce.number().int().min(1).max(100_000).default(120),
  // Retention (src/db/retention.ts): days before old records are pruned. Claims at least 14, past
  // the daily recap's 7-day look-back.
  RETENTION_CLAIMS_DAYS: z.coerce.number().int().min(14).max(3650).default(90),
  RETENTION_SESSIONS_DAYS: z.coerce.number().int().min(0).max(3650).default(7),
  RETENTION_LOGIN_ATTEMPTS_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  RETENTION_RATE_LIMIT_DAYS: z.coerce.number().int().min(1).max(3650).default(7),
  RETENTION_OUTBOX_BODY_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
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
type ParsedEnv = z.output<typeof EnvSchema>;

/** Rules that span variables; each names the variable to fix. */
const COMBINATION_RULES: ReadonlyArray<{ variable: string; uses: ReadonlyArray<keyof ParsedEnv>; broken: (e: ParsedEnv) => boolean; message: string }> = [
  { variable: 'LINK_SIGNING_KEYS', uses: ['NODE_ENV', 'LINK_SIGNING_KEYS'], broken: (e) => e.NODE_ENV === 'production' && !e.LINK_SIGNING_KEYS, message: 'required when NODE_ENV=production (kid:secret,...)' },
  { variable: 'PUBLIC_URL', uses: ['NODE_ENV', 'PUBLIC_URL'], broken: (e) => e.NODE_ENV === 'production' && !e.PUBLIC_URL.startsWith('https://'), message: 'must be https:// when NODE_ENV=production' },
  { variable: 'SMTP_TLS_KEY_FILE/SMTP_TLS_CERT_FILE', uses: ['SMTP_TLS_KEY_FILE', 'SMTP_TLS_CERT_FILE'], broken: (e) => Boolean(e.SMTP_TLS_KEY_FILE) !== Boolean(e.SMTP_TLS_CERT_FILE), message: 'set both or neither' },
  { variable: 'OUTBOUND_SMTP_URL', uses: ['NODE_ENV', 'OUTBOUND_SMTP_URL'], broken: (e) => e.NODE_ENV === 'production' && !e.OUTBOUND_SMTP_URL, message: 'required when NODE_ENV=production (mail is only captured in development)' },
  { variable: 'SMTP_TLS_CERT_FILE', uses: ['NODE_ENV', 'SMTP_TLS_KEY_FILE'], broken: (e) => e.NODE_ENV === 'production' && !e.SMTP_TLS_KEY_FILE, message: 'required when NODE_ENV=production (with SMTP_TLS_KEY_FILE)' },
  { variable: 'FAULT_POINT', uses: ['NODE_ENV', 'FAULT_POINT'], broken: (e) => e.NODE_ENV === 'production' && Boolean(e.FAULT_POINT), message: 'a test hook that kills the process; never set it when NODE_ENV=production' },
  { variable: 'RECEIPT_SIGNING_KEY/RECEIPT_SIGNING_KEY_FILE', uses: ['RECEIPT_SIGNING_KEY', 'RECEIPT_SIGNING_KEY_FILE'], broken: (e) => Boolean(e.RECEIPT_SIGNING_KEY && e.RECEIPT_SIGNING_KEY_FILE), message: 'set one or neither' },
  { variable: 'RECEIPT_SIGNING_KEY_FILE', uses: ['NODE_ENV', 'RECEIPT_SIGNING_KEY', 'RECEIPT_SIGNING_KEY_FILE'], broken: (e) => e.NODE_ENV === 'production' && !e.RECEIPT_SIGNING_KEY && !e.RECEIPT_SIGNING_KEY_FILE, message: 'required when NODE_ENV=production (or RECEIPT_SIGNING_KEY)' },
  { variable: 'DKIM_PRIVATE_KEY/DKIM_PRIVATE_KEY_FILE', uses: ['DKIM_PRIVATE_KEY', 'DKIM_PRIVATE_KEY_FILE'], broken: (e) => Boolean(e.DKIM_PRIVATE_KEY && e.DKIM_PRIVATE_KEY_FILE), message: 'set one or neither' },
  { variable: 'DKIM_SELECTOR', uses: ['DKIM_SELECTOR', 'DKIM_PRIVATE_KEY', 'DKIM_PRIVATE_KEY_FILE'], broken: (e) => Boolean(e.DKIM_SELECTOR) !== Boolean(e.DKIM_PRIVATE_KEY || e.DKIM_PRIVATE_KEY_FILE), message: 'set it together with DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_FILE (or none of them)' },
  // No silent embedded database in production: the data must live in the operator's MongoDB.
  { variable: 'MONGODB_URI', uses: ['NODE_ENV', 'MONGODB_URI'], broken: (e) => e.NODE_ENV === 'production' && !e.MONGODB_URI, message: 'required when NODE_ENV=production (mongodb://…; the embedded database is for development and tests only)' },
  { variable: 'SECRETS_KEY', uses: ['NODE_ENV', 'SECRETS_KEY'], broken: (e) => e.NODE_ENV === 'production' && !e.SECRETS_KEY, message: 'required when NODE_ENV=production (32 bytes: openssl rand -hex 32); it encrypts the acquirers\' secret keys' },
];

const ConfigSchema = EnvSchema.superRefine(
  (e, ctx) => {
    // Runs even when single variables failed, so one start-up lists every problem; a rule that
    // reads a variable which failed on its own is skipped (that variable is already reported).
    const failed = new Set(ctx.issues?.map((i) => i.path?.[0]) ?? []);
    for (const rule of COMBINATION_RULES) {
      if (rule.uses.some((v) => failed.has(v))) continue;
      if (rule.broken(e)) ctx.addIssue({ code: 'custom', path: [rule.variable], message: rule.message });
    }
  },
  { when: () => true },
).transform((e) =>
  Object.freeze({
    env: e.NODE_ENV,
    production: e.NODE_ENV === 'production',
    mongodbUri: e.MONGODB_URI,
    dataDir: path.resolve(e.DATA_DIR),
    httpPort: e.HTTP_PORT,
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    smtpMxPort: e.SMTP_MX_PORT,
    smtpSubmissionPort: e.SMTP_SUBMISSION_PORT,
    mailDomain: e.MAIL_DOMAIN,
    outboundSmtpUrl: e.OUTBOUND_SMTP_URL,
    /** Pooled relay connections (src/mail/transport.ts). */
    outboundSmtpMaxConnections: e.OUTBOUND_SMTP_MAX_CONNECTIONS,
    /** Work runner lanes per queue (src/jobs/work-runner.ts). */
    outboxConcurrency: e.OUTBOX_CONCURRENCY,
    webhookConcurrency: e.WEBHOOK_CONCURRENCY,
    intakeConcurrency: e.INTAKE_CONCURRENCY,
    linkSigningKeys: e.LINK_SIGNING_KEYS ? Object.freeze(e.LINK_SIGNING_KEYS) : undefined,
    /** Key of the acquirer secrets at rest (src/services/secrets-key.ts); generated in development. */
    secretsKey: e.SECRETS_KEY,
    dnsServers: e.DNS_SERVERS ? Object.freeze(e.DNS_SERVERS) : undefined,
    logLevel: e.LOG_LEVEL,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    maxLinkLifetimeDays: e.MAX_LINK_LIFETIME_DAYS,
    /** Server API requests per API key and minute (src/http/api/). */
    apiRateLimit: e.API_RATE_LIMIT,
    /** Ages (days) after which src/jobs/retention.job.ts prunes old records. */
    retention: Object.freeze({
      claimsDays: e.RETENTION_CLAIMS_DAYS,
      sessionsDays: e.RETENTION_SESSIONS_DAYS,
      loginAttemptsDays: e.RETENTION_LOGIN_ATTEMPTS_DAYS,
      rateLimitDays: e.RETENTION_RATE_LIMIT_DAYS,
      outboxBodyDays: e.RETENTION_OUTBOX_BODY_DAYS,
    }),
    smtpTls:
      e.SMTP_TLS_KEY_FILE && e.SMTP_TLS_CERT_FILE
        ? Object.freeze({ keyFile: e.SMTP_TLS_KEY_FILE, certFile: e.SMTP_TLS_CERT_FILE })
        : undefined,
    ferretdbBin: e.FERRETDB_BIN,
    /** Log database commands slower than this many ms (0: off); field names only, never values. */
    slowQueryMs: e.SLOW_QUERY_MS,
    slowQueryFile: e.SLOW_QUERY_FILE,
    /** Tests only: the step boundary at which the process kills itself (refused in production). */
    faultPoint: e.FAULT_POINT,
    /** Ed25519 PKCS#8 PEM signing payment proofs (or the file holding it); generated in development. */
    receiptSigningKey: e.RECEIPT_SIGNING_KEY,
    receiptSigningKeyFile: e.RECEIPT_SIGNING_KEY_FILE,
    /** JWKS of retired receipt keys that must keep verifying. */
    receiptPublicKeysFile: e.RECEIPT_PUBLIC_KEYS_FILE,
    /** Behind a reverse proxy: take the client address from X-Forwarded-For (rate limits, logs). */
    trustProxy: e.TRUST_PROXY,
    /** Let webhooks go to loopback, private, link-local… addresses (development and tests only). */
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    /** DKIM signing of every outgoing mail for MAIL_DOMAIN; undefined when the relay signs (or nobody). */
    dkim: e.DKIM_SELECTOR
      ? Object.freeze({ selector: e.DKIM_SELECTOR, privateKey: e.DKIM_PRIVATE_KEY, privateKeyFile: e.DKIM_PRIVATE_KEY_FILE })
      : undefined,
  }),
);

/** The frozen config object; its shape is the schema's output, so the two cannot drift apart. */
export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const SECRET_VARIABLES = new Set(['LINK_SIGNING_KEYS', 'SECRETS_KEY', 'RECEIPT_SIGNING_KEY', 'DKIM_PRIVATE_KEY']);

/** Builds the config from an environment (process.env by default); throws ConfigError listing every problem on one line. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.safeParse(source);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const variable = String(issue.path[0] ?? 'environment');
    const given = source[variable];
    const shown = SECRET_VARIABLES.has(variable) || given === undefined ? '' : ` (got "${given}")`;
    return `invalid ${variable}${shown}: ${issue.message}`;
  });
  throw new ConfigError(problems.join('; '));
}
