// Shared pieces of the fault tests (test/faults/*.test.ts): a controllable outbound relay (accepts,
// refuses DATA with a code, refuses connections with 421, holds a DATA answer, or is down with
// its port closed), merchant creation through the CLI, an order-mail client that retries 4xx
// answers the way an MTA does, and polling with a deadline. Everything runs on 127.0.0.1.
import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { extractMessageId } from '../../src/services/intake.service.ts';
import { runCli } from '../helpers/paymail-process.ts';

/** How many order mails the heavy fault tests send (`npm run faults` sets 2000). */
export const FAULT_MAILS = Math.max(10, Number(process.env.FAULT_MAILS ?? 200) || 200);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value; fails with `describe()` after `timeoutMs`. */
export async function waitUntil<T>(check: () => Promise<T> | T, timeoutMs: number, describe: () => Promise<string> | string, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms: ${await describe()}`);
    await sleep(everyMs);
  }
}

export interface RelayMail {
  messageId: string;
  to: string[];
  at: number;
}

/** What the relay does with the next DATA: undefined accepts, a number refuses with that code. */
export type RelayGate = (messageId: string) => number | undefined | Promise<number | undefined>;

export interface FaultRelay {
  port: number;
  url: string;
  /** Accepted mails in order of acceptance (a re-send of the same Message-ID appears twice). */
  accepted: RelayMail[];
  /** Every DATA answered with a refusal: Message-ID and code. */
  refused: Array<{ messageId: string; code: number; at: number }>;
  /** Connections turned away with 421 at the greeting. */
  refusedConnections: number;
  /** Answer DATA according to `gate` (default: accept everything). */
  setGate(gate: RelayGate | undefined): void;
  /** true: every new connection gets `421` at the greeting. */
  refuseConnections(on: boolean): void;
  /** Closes the port (connection refused) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
  /** Accepted count per Message-ID. */
  counts(): Map<string, number>;
}

export async function startFaultRelay(): Promise<FaultRelay> {
  const accepted: RelayMail[] = [];
  const refused: FaultRelay['refused'] = [];
  let gate: RelayGate | undefined;
  let refuseConn = false;
  let port = 0;
  let server: SMTPServer | undefined;
  const relay: FaultRelay = {
    port: 0,
    url: '',
    accepted,
    refused,
    refusedConnections: 0,
    setGate: (g) => void (gate = g),
    refuseConnections: (on) => void (refuseConn = on),
    down: () => closeServer(),
    up: () => listen(),
    close: () => closeServer(),
    counts() {
      const m = new Map<string, number>();
      for (const a of accepted) m.set(a.messageId, (m.get(a.messageId) ?? 0) + 1);
      return m;
    },
  };

  function newServer(): SMTPServer {
    return new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // A relay that is down for good would not keep old sessions: close them on down().
      closeTimeout: 100,
      onConnect(_session, cb) {
        if (!refuseConn) return cb();
        relay.refusedConnections++;
        cb(Object.assign(new Error('service not available, try again later'), { responseCode: 421 }));
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const messageId = extractMessageId(Buffer.concat(chunks)) ?? '';
          Promise.resolve(gate?.(messageId)).then(
            (code) => {
              if (code) {
                refused.push({ messageId, code, at: Date.now() });
                return cb(Object.assign(new Error('try again later'), { responseCode: code }));
              }
              accepted.push({ messageId, to: session.envelope.rcptTo.map((r) => r.address), at: Date.now() });
              cb();
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
  }

  async function listen(): Promise<void> {
    const s = newServer();
    // A client killed mid-session (kill -9 of paymail) resets its connection: not our failure.
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
    port = (s.server.address() as AddressInfo).port;
  }

  async function closeServer(): Promise<void> {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await listen();
  relay.port = port;
  relay.url = `smtp://127.0.0.1:${port}`;
  return relay;
}

/**
 * The environment of a paymail process under test: its database and data directory, every port
 * picked free, outbound mail to the fault relay; `extra` adds or overrides variables.
 */
export function processEnv(mongodbUri: string, dataDir: string, relayUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MONGODB_URI: mongodbUri,
    DATA_DIR: dataDir,
    HTTP_PORT: '0',
    SMTP_SUBMISSION_PORT: '0',
    SMTP_MX_PORT: '0',
    OUTBOUND_SMTP_URL: relayUrl,
    MAIL_DOMAIN: 'paymail.test',
    ...extra,
  };
}

export interface FaultMerchant {
  id: string;
  inboundAddress: string;
  smtpUser: string;
  smtpPassword: string;
  adminEmail: string;
  webhookSecret: string;
}

/** `paymail merchant create --json` against the environment's database. */
export async function createMerchant(env: Record<string, string>, name: string, email: string): Promise<FaultMerchant> {
  const cli = await runCli(['merchant', 'create', '--name', name, '--email', email, '--currency', 'EUR', '--json'], env);
  assert.equal(cli.code, 0, cli.stderr);
  return JSON.parse(cli.stdout) as FaultMerchant;
}

export interface OrderMail {
  messageId: string;
  text: string;
  subject: string;
}

/** What happened to one mail: the answers it got until the final one. */
export interface MailOutcome {
  /** SMTP codes of the refused attempts (4xx), in order. */
  tempCodes: number[];
  /** Attempts that ended without an SMTP answer (connection dropped or refused). */
  connectionErrors: number;
  /** When each refused or failed attempt ended (ms since the epoch). */
  retriedAt: number[];
  /** The final answer: 250, or the permanent (5xx) code that ended it. */
  final: number;
  /** ms from the first attempt to the final answer. */
  ms: number;
  /** When the first attempt started (ms since the epoch). */
  startedAt: number;
}

export type SubmissionClient = ReturnType<typeof nodemailer.createTransport>;

export function submissionClient(port: number, merchant: FaultMerchant, connections = 4): SubmissionClient {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    auth: { user: merchant.smtpUser, pass: merchant.smtpPassword },
    tls: { rejectUnauthorized: false },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
}

/**
 * Sends like an MTA: a 4xx answer (or a lost connection) is retried after a short pause, up to
 * `deadlineMs`; 250 and 5xx are final. `retry: false` gives up after the first 4xx.
 */
export async function sendWithRetry(
  client: () => SubmissionClient,
  merchant: FaultMerchant,
  mail: OrderMail,
  opts: { deadlineMs?: number; retry?: boolean } = {},
): Promise<MailOutcome> {
  const started = Date.now();
  const deadline = started + (opts.deadlineMs ?? 120_000);
  const out: MailOutcome = { tempCodes: [], connectionErrors: 0, retriedAt: [], final: 0, ms: 0, startedAt: started };
  for (let attempt = 1; ; attempt++) {
    try {
      const info = await client().sendMail({
        from: 'desk@faults.example',
        to: merchant.inboundAddress,
        subject: mail.subject,
        messageId: mail.messageId,
        text: mail.text,
      });
      out.final = Number(/^(\d{3})/.exec(String(info.response))?.[1] ?? 0);
      break;
    } catch (e) {
      const code = (e as { responseCode?: number }).responseCode;
      if (typeof code === 'number' && code >= 500) {
        out.final = code;
        break;
      }
      if (typeof code === 'number') out.tempCodes.push(code);
      else out.connectionErrors++;
      out.retriedAt.push(Date.now());
      if (opts.retry === false || Date.now() > deadline) {
        out.final = code ?? -1;
        break;
      }
      await sleep(Math.min(2_000, 200 * attempt));
    }
  }
  out.ms = Date.now() - started;
  return out;
}

/** Runs `fn(i)` for i in [0, n) with `width` at a time; returns the results by index. */
export async function inParallel<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await fn(i);
      }
    }),
  );
  return results;
}

/** Histogram of values, e.g. SMTP codes: { "451": 12, "454": 3 }. */
export function tally(values: Iterable<number | string>): Record<string, number> {
  const t: Record<string, number> = {};
  for (const v of values) t[String(v)] = (t[String(v)] ?? 0) + 1;
  return t;
}
