// Running totals for /metrics, so a scrape reads a handful of small documents instead of scanning
// every order and every payment attempt (it did, every 5 s). Collection `counters`, one document
// per figure: `orders:<status>` (orders in that status now) and `attempts:<outcome>` (payment
// attempts ever recorded). The orders repository bumps them after each write that changes them
// (insert, pending → paid/expired/cancelled, an attempt appended): `$inc` upserts, one round trip.
// Counting the collections once builds them (the first scrape of a database without them, marked
// by `counters:built`), so an existing deployment starts from true figures.
// The bump is a second write after the order's own: a crash between the two leaves a figure off by
// one until `rebuildCounters()` runs again (an operator's `paymail` restart does not; dropping the
// `counters:built` document does). Gauges for dashboards and alerts, not accounting.
// On FerretDB v1 `$inc` is read-modify-write (see src/db/claims.ts): racing bumps can lose counts
// in development; on MongoDB each is atomic.
import mongoose, { Schema } from 'mongoose';
import { ORDER_STATUSES } from '../domain/order-status.ts';
import { OutboxDue } from './due-queue.ts';
import { Order } from './models/order.model.ts';
import { Outbox } from './models/outbox.model.ts';
import { WebhookAttempt, WebhookDelivery } from './models/webhook.model.ts';

const CounterSchema = new Schema({ _id: { type: String, required: true }, n: { type: Number, required: true } }, { versionKey: false });
export const Counters = mongoose.model('Counter', CounterSchema, 'counters');

const BUILT = 'counters:built';

/** Adds `by` to each counter (negative to subtract); one write for all. Never throws: a gauge is not worth failing an order. */
export async function bumpCounters(by: Record<string, number>): Promise<void> {
  const ops = Object.entries(by)
    .filter(([, n]) => n !== 0)
    .map(([k, n]) => ({ updateOne: { filter: { _id: k }, update: { $inc: { n } }, upsert: true } }));
  if (ops.length === 0) return;
  await Counters.bulkWrite(ops as never, { ordered: false }).catch(() => {});
}

/** Counts orders by status and attempts by outcome once (a full read) and stores the totals. */
export async function rebuildCounters(maxTimeMS = 60_000): Promise<void> {
  const [byStatus, byOutcome] = await Promise.all([
    Order.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]).option({ maxTimeMS }),
    Order.aggregate<{ _id: string; n: number }>([
      { $match: { 'attempts.0': { $exists: true } } },
      { $unwind: '$attempts' },
      { $group: { _id: '$attempts.outcome', n: { $sum: 1 } } },
    ]).option({ maxTimeMS }),
  ]);
  const docs = [
    ...ORDER_STATUSES.map((s) => ({ _id: `orders:${s}`, n: byStatus.find((b) => b._id === s)?.n ?? 0 })),
    ...byOutcome.map((o) => ({ _id: `attempts:${String(o._id)}`, n: o.n })),
    { _id: BUILT, n: 1 },
  ];
  await Counters.bulkWrite(docs.map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } })) as never, { ordered: false });
}

export interface DbSnapshot {
  orders: Record<string, number>;
  payments: Record<string, number>;
  outboxDepth: number;
  outboxOldestCreated: Date | undefined;
  outboxDead: number;
  webhookFailedAttempts: number;
  webhookDeadDeliveries: number;
}

/** True while the default connection is open (a scrape then leaves the database figures out). */
export const dbConnected = (): boolean => mongoose.connection.readyState === 1;

/** What /metrics shows from the database: counters, the due queue (small), counts by indexed status. */
export async function metricsSnapshot(maxTimeMS: number): Promise<DbSnapshot> {
  let counters = await Counters.find({}).maxTimeMS(maxTimeMS).lean<Array<{ _id: string; n: number }>>();
  if (!counters.some((c) => c._id === BUILT)) {
    await rebuildCounters();
    counters = await Counters.find({}).maxTimeMS(maxTimeMS).lean<Array<{ _id: string; n: number }>>();
  }
  const of = (prefix: string) => Object.fromEntries(counters.filter((c) => c._id.startsWith(prefix)).map((c) => [c._id.slice(prefix.length), c.n]));
  const [outboxDepth, oldest, outboxDead, webhookFailedAttempts, webhookDeadDeliveries] = await Promise.all([
    // The due queue holds exactly the unsent mails (src/db/due-queue.ts): small, unlike the outbox.
    OutboxDue.estimatedDocumentCount({ maxTimeMS }),
    OutboxDue.findOne({}).sort({ created: 1 }).select({ created: 1 }).maxTimeMS(maxTimeMS).lean<{ created?: Date }>(),
    Outbox.countDocuments({ status: 'dead' }).maxTimeMS(maxTimeMS),
    WebhookAttempt.countDocuments({ ok: false }).maxTimeMS(maxTimeMS),
    WebhookDelivery.countDocuments({ status: 'dead' }).maxTimeMS(maxTimeMS),
  ]);
  const orders = of('orders:');
  return {
    orders: Object.fromEntries(ORDER_STATUSES.map((s) => [s, Math.max(0, orders[s] ?? 0)])),
    payments: of('attempts:'),
    outboxDepth,
    outboxOldestCreated: oldest?.created,
    outboxDead,
    webhookFailedAttempts,
    webhookDeadDeliveries,
  };
}
