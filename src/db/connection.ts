// Connects mongoose: to MONGODB_URI when set, else to an embedded FerretDB under DATA_DIR.
import mongoose from 'mongoose';
import path from 'node:path';
import { type Config } from '../config.ts';
import { ensureFerretdb } from './ferretdb-build.ts';
import { findRunning, startEmbeddedFerretdb, type EmbeddedDb } from './embedded-ferretdb.ts';
import { Claim } from './claims.ts';
import { OutboxDue, WebhookDue } from './due-queue.ts';
import { InboundMessage, InboundRaw } from './models/inbound-message.model.ts';
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

export interface Database {
  connection: mongoose.Connection;
  /** Describes the server for logs and benchmark reports. */
  description: string;
  close(): Promise<void>;
}

export const MODELS = [Merchant, MerchantUser, Order, InboundMessage, InboundRaw, Outbox, CapturedMail, Claim, WebhookDelivery, WebhookAttempt, PaymentFailure, Challenge, Session, LoginFailure, Refund, OutboxDue, WebhookDue, RecapDay];

export async function connectDatabase(
  config: Pick<Config, 'mongodbUri' | 'dataDir' | 'ferretdbBin'>,
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
  try {
    await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
    await Promise.all(MODELS.map((m) => m.createIndexes()));
  } catch (e) {
    await embedded?.stop();
    throw e;
  }
  return {
    connection: mongoose.connection,
    description,
    async close() {
      await mongoose.disconnect();
      await embedded?.stop();
    },
  };
}
