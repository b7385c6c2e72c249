// Connects mongoose: to MONGODB_URI when set, else to an embedded FerretDB under DATA_DIR.
import { appendFileSync } from 'node:fs';
import mongoose from 'mongoose';
import path from 'node:path';
import { type Config } from '../config.ts';
import { ensureFerretdb } from './ferretdb-build.ts';
import { findRunning, startEmbeddedFerretdb, type EmbeddedDb } from './embedded-ferretdb.ts';
import { Claim } from './claims.ts';
import { describeEngine, type EngineGuarantees } from './engine.ts';
import { followReachability, isDatabaseReachable } from './reachability.ts';
import { InboundDue, OutboxDue, WebhookDue } from './due-queue.ts';
import { InboundMessage, InboundRaw } from './models/inbound-message.model.ts';
import { MerchantLogo } from './models/merchant-logo.model.ts';
import { Merchant } from './models/merchant.model.ts';
import { MerchantUser } from './models/merchant-user.model.ts';
import { Order } from './models/order.model.ts';
import { CapturedMail, Outbox } from './models/outbox.model.ts';
import { PaymentFailure } from './models/rate-limit.model.ts';
import { Challenge } from './models/challenge.model.ts';
import { Session } from './models/session.model.ts';
import { LoginFailure } from './models/login-attempt.model.ts';
import { WebhookAttempt, WebhookDelivery } from './models/webhook.model.ts';
import { Refund } from './models/refund.model.ts';
import { RecapDay } from './models/recap-day.model.ts';
import { SmtpAuthFailure, SmtpAuthKnown } from './models/smtp-auth-failure.model.ts';
import { ReplySlot } from './models/reply-brake.model.ts';
import { SealNonce } from './models/seal-nonce.model.ts';
import { Customer } from './models/customer.model.ts';
import { CardVaultEntry } from './models/card-vault.model.ts';
import { ApiIdempotency, ApiKey, ApiRateHit } from './models/api-key.model.ts';

export interface Database {
  connection: mongoose.Connection;
  /** Describes the server for logs and benchmark reports. */
  description: string;
  /** The engine and what it guarantees (src/db/engine.ts): decides whether lease referees insert claims. */
  engine: EngineGuarantees;
  close(): Promise<void>;
}

export const MODELS = [Merchant, MerchantUser, Order, InboundMessage, InboundRaw, Outbox, CapturedMail, Claim, WebhookDelivery, WebhookAttempt, PaymentFailure, Challenge, Session, LoginFailure, Refund, OutboxDue, WebhookDue, InboundDue, RecapDay, SmtpAuthFailure, SmtpAuthKnown, ReplySlot, SealNonce, Customer, CardVaultEntry, ApiKey, ApiIdempotency, ApiRateHit, MerchantLogo];

export async function connectDatabase(
  config: Pick<Config, 'mongodbUri' | 'dataDir' | 'ferretdbBin'> & Partial<Pick<Config, 'slowQueryMs' | 'slowQueryFile'>>,
  opts: { log?: (line: string) => void; reuseRunning?: boolean } = {},
): Promise<Database> {
  const log = opts.log ?? (() => {});
  let embedded: EmbeddedDb | undefined;
  let uri = config.mongodbUri;
  let description = 'MongoDB at MONGODB_URI';
  if (!uri) {
    const dir = path.join(config.dataDir, 'db');
    const running = opts.reuseRunning ? await findRunning(dir) : undefined;
    if (running) {
      uri = running.uri;
    } else {
      const binary = config.ferretdbBin ?? (await ensureFerretdb(log));
      embedded = await startEmbeddedFerretdb({ binary, dir, log });
      uri = embedded.uri;
    }
    description = `embedded FerretDB (SQLite) under ${dir}`;
  }
  mongoose.set('strictQuery', true);
  let engine: EngineGuarantees | undefined;
  let watchdog: (() => void) | undefined;
  try {
    const slowMs = config.slowQueryMs ?? 0;
    const options = {
      serverSelectionTimeoutMS: 10_000,
      autoIndex: false,
      // Poll the server every 2 s: after a database restart the doors answer 451 until the
      // driver has seen the server again, so it should look often (fault test db-restarts).
      serverMonitoringMode: 'poll' as const,
      heartbeatFrequencyMS: 2_000,
      ...(slowMs > 0 ? { monitorCommands: true } : {}),
    };
    await mongoose.connect(uri, options);
    watchdog = startReconnectWatchdog(uri, options, log);
    if (slowMs > 0) {
      const file = config.slowQueryFile;
      logSlowCommands(slowMs, (line) => (file ? appendFileSync(file, `${line}\n`) : log(line)));
    }
    await Promise.all(MODELS.map((m) => m.createIndexes()));
    engine = await describeEngine(mongoose.connection);
  } catch (e) {
    await embedded?.stop();
    throw e;
  }
  return {
    connection: mongoose.connection,
    description,
    engine: engine!,
    async close() {
      watchdog?.();
      await mongoose.disconnect();
      await embedded?.stop();
    },
  };
}

/**
 * Diagnostics (SLOW_QUERY_MS, SLOW_QUERY_FILE): one line per database command slower than `ms`, with the
 * collection and the filter's field names (never values: they may hold customer data).
 */
function logSlowCommands(ms: number, log: (line: string) => void): void {
  const started = new Map<number, { name: string; coll: string; shape: string }>();
  const client = mongoose.connection.getClient();
  client.on('commandStarted', (e) => {
    const cmd = e.command as Record<string, unknown>;
    const coll = String(cmd[e.commandName] ?? '');
    const filter = (cmd.filter ?? cmd.query ?? (cmd.updates as Array<{ q?: object }> | undefined)?.[0]?.q ?? (cmd.deletes as Array<{ q?: object }> | undefined)?.[0]?.q ?? {}) as object;
    started.set(e.requestId, { name: e.commandName, coll, shape: Object.keys(filter).join(',') });
  });
  const done = (e: { requestId: number; duration: number }) => {
    const s = started.get(e.requestId);
    started.delete(e.requestId);
    if (s && e.duration >= ms) log(`slow database command: ${s.name} ${s.coll} {${s.shape}} ${Math.round(e.duration)} ms`);
  };
  client.on('commandSucceeded', done);
  client.on('commandFailed', done);
}

/**
 * Seen in the fault test (database stopped and started under load), intermittently: after the
 * restart the driver's topology stays "Unknown" for good — every operation fails server
 * selection with the error of a connection closed by the old server — while a fresh client
 * connects at once. When the driver has seen no server for WEDGED_MS, this probes with a fresh
 * client; if that one gets through, the connection is rebuilt (in-flight work fails and is
 * retried by its owner, like during the outage itself). Returns the stop function.
 */
const WEDGED_MS = 15_000;
function startReconnectWatchdog(uri: string, options: mongoose.ConnectOptions, log: (line: string) => void): () => void {
  let downSince: number | undefined;
  let busy = false;
  const timer = setInterval(() => {
    // 0 (mongoose saw the driver disconnect) or 1 (it did not): both can be wedged.
    if (busy || mongoose.connection.readyState === 2 || mongoose.connection.readyState === 3) return;
    if (isDatabaseReachable()) {
      downSince = undefined;
      return;
    }
    downSince ??= Date.now();
    if (Date.now() - downSince < WEDGED_MS) return;
    busy = true;
    void (async () => {
      const probe = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
      try {
        await probe.connect();
        await probe.db().command({ ping: 1 });
      } catch {
        return; // really down: keep waiting
      } finally {
        await probe.close().catch(() => {});
      }
      log('the database answers again but the driver has not noticed: reconnecting');
      await mongoose.disconnect().catch(() => {});
      await mongoose.connect(uri, options);
      followReachability();
      downSince = undefined;
    })()
      .catch((err: unknown) => log(`database reconnect failed: ${(err as Error).message}`))
      .finally(() => {
        busy = false;
      });
  }, 5_000);
  timer.unref();
  return () => clearInterval(timer);
}
