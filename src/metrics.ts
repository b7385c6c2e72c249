// Prometheus metrics (prom-client), one registry per process. SMTP replies are counted as they
// happen; everything that lives in the database is read from it at scrape time, so several
// instances on one database report the same truth and nothing is lost on a restart: orders by
// status and payment attempts by outcome from running totals kept in the database
// (src/db/counters.ts; a scrape used to scan every order and attempt), outbox depth and age from
// the small due queue, dead mails and webhook failures by indexed counts. Those reads are bounded
// (maxTimeMS) and cached for a few seconds, so a scrape storm cannot load the database.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { dbConnected, metricsSnapshot } from './db/counters.ts';
import { passwordHashLoad } from './domain/password.ts';
import { type Logger } from './logger.ts';

export const registry = new Registry();

// Process metrics, event-loop lag included (nodejs_eventloop_lag_seconds and its percentiles).
collectDefaultMetrics({ register: registry, prefix: 'paymail_', eventLoopMonitoringPrecision: 10 });

/** Every answer a door gives to MAIL/RCPT/DATA (and 421 at connect), by door, stage and code. */
export const smtpReplies = new Counter({
  name: 'paymail_smtp_replies_total',
  help: 'SMTP replies by door (submission|mx), stage (connect|mail|rcpt|data) and reply code; mails received = stage="data",code="250"',
  labelNames: ['door', 'stage', 'code'] as const,
  registers: [registry],
});

export type SmtpStage = 'connect' | 'auth' | 'mail' | 'rcpt' | 'data';

export function countSmtpReply(door: string, stage: SmtpStage, code: number): void {
  smtpReplies.inc({ door, stage, code: String(code) });
}

/** Answers paymail did not send to an inbound mail, by reason (RFC 3834 and the loop brake). */
export const repliesSuppressed = new Counter({
  name: 'paymail_replies_suppressed_total',
  help: 'Inbound mails recorded but not answered, by reason: auto-submitted, precedence, list, null-sender, mailer-daemon (RFC 3834) or loop-brake (too many answers to one sender in an hour)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** AUTH attempts refused unchecked by the brute-force throttle (src/services/smtp-auth-throttle.service.ts). */
export const smtpAuthThrottled = new Counter({
  name: 'paymail_smtp_auth_throttled_total',
  help: 'SMTP AUTH attempts answered 454 by the brute-force throttle, by scope (address|user)',
  labelNames: ['scope'] as const,
  registers: [registry],
});

/** Password checks (scrypt) running and queued behind the concurrency bound (src/domain/password.ts). */
new Gauge({
  name: 'paymail_password_checks',
  help: 'Password hashing work (scrypt) by state: running (bounded) or waiting',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    const load = passwordHashLoad();
    this.set({ state: 'running' }, load.active);
    this.set({ state: 'waiting' }, load.waiting);
  },
});

/** Database-derived figures of one scrape. */
interface Snapshot {
  orders: Record<string, number>;
  payments: Record<string, number>;
  outboxDepth: number;
  outboxOldestPendingAgeSeconds: number;
  outboxDead: number;
  webhookFailedAttempts: number;
  webhookDeadDeliveries: number;
}

const QUERY_MS = 2_000;
const CACHE_MS = 5_000;
/** A database in trouble fails every scrape: one log line a minute says so, the counter counts them all. */
const FAILURE_LOG_INTERVAL_MS = 60_000;
let cached: { at: number; value: Promise<Snapshot | undefined> } | undefined;
let log: Logger | undefined;
let lastFailureLog = { at: -Infinity, suppressed: 0 };

/** Where failed metric queries are logged (the composition root sets it once). */
export function setMetricsLogger(logger: Logger): void {
  log = logger;
  lastFailureLog = { at: -Infinity, suppressed: 0 };
}

export const metricsQueryFailures = new Counter({
  name: 'paymail_metrics_query_failures_total',
  help: 'Scrapes whose database queries failed (their figures were left out)',
  registers: [registry],
});

function queryFailed(err: unknown): undefined {
  metricsQueryFailures.inc();
  const now = Date.now();
  if (now - lastFailureLog.at >= FAILURE_LOG_INTERVAL_MS) {
    log?.warn({ err, suppressedSinceLast: lastFailureLog.suppressed }, 'metrics database query failed');
    lastFailureLog = { at: now, suppressed: 0 };
  } else lastFailureLog.suppressed++;
  return undefined;
}

async function query(): Promise<Snapshot | undefined> {
  // Disconnected: leave the figures out rather than queue queries in the driver (readyz says why).
  if (!dbConnected()) return undefined;
  // Orders and attempts from running totals (src/db/counters.ts), not a scan of the orders.
  const s = await metricsSnapshot(QUERY_MS);
  const oldestAt = s.outboxOldestCreated;
  return {
    orders: s.orders,
    payments: s.payments,
    outboxDepth: s.outboxDepth,
    outboxOldestPendingAgeSeconds: oldestAt ? Math.max(0, (Date.now() - oldestAt.getTime()) / 1000) : 0,
    outboxDead: s.outboxDead,
    webhookFailedAttempts: s.webhookFailedAttempts,
    webhookDeadDeliveries: s.webhookDeadDeliveries,
  };
}

/** The cached snapshot; a failed query yields undefined (the gauges then keep no value), counted and logged. */
function snapshot(): Promise<Snapshot | undefined> {
  const now = Date.now();
  if (!cached || now - cached.at > CACHE_MS) {
    cached = { at: now, value: query().catch(queryFailed) };
  }
  return cached.value;
}

/** Forgets the cached snapshot (tests, and a scrape right after a known change). */
export function invalidateMetricsCache(): void {
  cached = undefined;
}

function dbGauge(name: string, help: string, set: (g: Gauge<string>, s: Snapshot) => void, labelNames: string[] = []): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      const s = await snapshot();
      if (s) set(this, s);
    },
  });
}

dbGauge('paymail_orders', 'Orders by status (running totals in the database)', (g, s) => {
  for (const [status, n] of Object.entries(s.orders)) g.set({ status }, n);
}, ['status']);
dbGauge('paymail_payment_attempts', 'Payment attempts by outcome (running totals in the database)', (g, s) => {
  for (const [outcome, n] of Object.entries(s.payments)) g.set({ outcome }, n);
}, ['outcome']);
dbGauge('paymail_outbox_depth', 'Outbound mails not yet sent (pending or sending)', (g, s) => g.set(s.outboxDepth));
dbGauge('paymail_outbox_oldest_pending_age_seconds', 'Age of the oldest pending outbound mail (0 when none)', (g, s) =>
  g.set(s.outboxOldestPendingAgeSeconds),
);
dbGauge('paymail_outbox_dead', 'Outbound mails given up after the maximum attempts', (g, s) => g.set(s.outboxDead));
dbGauge('paymail_webhook_failed_attempts', 'Webhook delivery attempts that failed', (g, s) => g.set(s.webhookFailedAttempts));
dbGauge('paymail_webhook_dead_deliveries', 'Webhook events given up after the maximum attempts', (g, s) => g.set(s.webhookDeadDeliveries));
