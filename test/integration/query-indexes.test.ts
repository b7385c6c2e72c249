// Every query the app sends has an index (production is MongoDB: a query without one is a
// collection scan). A representative run — a merchant, orders created by the order service (what
// intake calls), the checkout opened and paid (declined, then approved), a refund, a reply command
// finding orders by reference, a cancel, the expiry, orders paid in parts (a deposit paid, the
// balance opened by the plan service and by the plan job's due query, then paid), the crash
// repair, the daily recap over part payments and part-paid orders (few and many merchants), the back office's search, the SMTP intake through a real submission door (an
// order mail, a duplicate, a reply command, a wrong password for the AUTH throttle, the start-up
// resume), a sealed request and its nonce sweep, back-office logins, pages and a logout, the
// outbox and webhook work runners against a local SMTP sink and HTTP receiver (one retry each)
// across a suspension's hold and release, the retention job, the metrics scrape — goes through
// the real services while the driver's command monitoring (`monitorCommands`, `commandStarted`) records each find/aggregate/update/delete/
// findAndModify/count/distinct. Each query shape (collection, equality/range/other fields of the
// filter, `$or` branches, sort) must be served by a declared index (the mongoose schemas'
// `indexes()` plus `_id`) whose first key is one of its equality or range fields — for an `$or`,
// every branch (with the fields ANDed beside it). Reads of a whole collection by design are listed
// in BY_DESIGN with the reason. The shapes are printed.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { MODELS } from '../../src/db/connection.ts';
import { rebuildCounters } from '../../src/db/counters.ts';
import { createRepositories } from '../../src/db/repositories.ts';
import { invalidateMetricsCache, registry } from '../../src/metrics.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createExpiryJob } from '../../src/jobs/expiry.job.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createWebhookWorker } from '../../src/jobs/webhook-worker.ts';
import { close as closeDoor, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantSuspensionService } from '../../src/services/merchant-suspension.service.ts';
import { createSealedRequestService } from '../../src/services/sealed-request.service.ts';
import { createSmtpAuthThrottle } from '../../src/services/smtp-auth-throttle.service.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService, type CheckoutForm } from '../../src/services/checkout.service.ts';
import { createCommandService } from '../../src/services/commands.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderAdminService } from '../../src/services/order-admin.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createPlanService } from '../../src/services/plan.service.ts';
import { createRecapService } from '../../src/services/recap.service.ts';
import { createRefundService } from '../../src/services/refund.service.ts';
import { createSavedCardChargeService } from '../../src/services/saved-card-charge.service.ts';
import { createSavedCardRemoval } from '../../src/services/saved-card-removal.service.ts';
import { cardRemovalUrl } from '../../src/domain/card-removal.ts';
import { createRenewalService } from '../../src/services/renewal.service.ts';
import { testDbUri } from '../helpers/db.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import { startApiApp } from './api-client.ts';
import { BoClient, startBackofficeApp } from './backoffice-client.ts';

const KEYS: LinkKey[] = [{ kid: 'qi1', secret: 'query-indexes-test-secret-query-indexes' }];
const MAIL_DOMAIN = 'paymail.test';
const EXPIRY = `09/${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

const QUERY_COMMANDS: Record<string, string> = {
  find: 'filter',
  count: 'query',
  distinct: 'query',
  delete: 'deletes',
  update: 'updates',
  findAndModify: 'query',
  aggregate: 'pipeline',
};

/** A query's fields: equality, range, other operators ($regex, $exists, $ne, …), and $or branches. */
interface Shape {
  coll: string;
  cmd: string;
  eq: string[];
  range: string[];
  other: string[];
  or: Shape[];
  sort: string[];
}

const RANGE = new Set(['$gt', '$gte', '$lt', '$lte']);
const EQ = new Set(['$eq', '$in']);

function shapeOf(coll: string, cmd: string, filter: Record<string, unknown> = {}, sort: Record<string, unknown> = {}): Shape {
  const s: Shape = { coll, cmd, eq: [], range: [], other: [], or: [], sort: Object.keys(sort) };
  for (const [k, v] of Object.entries(filter)) {
    if (k === '$or') {
      for (const b of v as Record<string, unknown>[]) s.or.push(shapeOf(coll, cmd, b));
    } else if (k === '$and') {
      for (const b of v as Record<string, unknown>[]) {
        const sub = shapeOf(coll, cmd, b);
        s.eq.push(...sub.eq);
        s.range.push(...sub.range);
        s.other.push(...sub.other);
        s.or.push(...sub.or);
      }
    } else if (k.startsWith('$')) {
      continue; // $comment and the like
    } else if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && Object.keys(v).some((o) => o.startsWith('$'))) {
      const ops = Object.keys(v);
      const re = (v as { $regex?: unknown; $options?: string }).$regex;
      // An anchored, case-sensitive regex is a prefix: an index range scan on MongoDB.
      if (ops.includes('$regex') && String(re instanceof RegExp ? re.source : re).startsWith('^') && !/i/.test((v as { $options?: string }).$options ?? (re instanceof RegExp ? re.flags : ''))) s.range.push(k);
      else if (ops.every((o) => EQ.has(o))) s.eq.push(k);
      else if (ops.every((o) => RANGE.has(o))) s.range.push(k);
      else s.other.push(`${k}:${ops.join(',')}`);
    } else s.eq.push(k);
  }
  return s;
}

const label = (s: Shape): string => {
  const parts = [...s.eq.map((f) => `${f}=`), ...s.range.map((f) => `${f}<>`), ...s.other];
  if (s.or.length) parts.push(`$or[${s.or.map((b) => label({ ...b, sort: [] }).replace(/^\S+ \S+ /, '')).join(' | ')}]`);
  return `${s.coll} ${s.cmd} {${parts.join(', ')}}${s.sort.length ? ` sort ${s.sort.join(',')}` : ''}`;
};

/** The declared indexes of each collection: their key lists (first key first). */
function declaredIndexes(): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const m of Object.values(mongoose.models)) {
    const list = out.get(m.collection.collectionName) ?? [['_id']];
    for (const [keys] of m.schema.indexes()) list.push(Object.keys(keys));
    for (const [path, type] of Object.entries(m.schema.paths)) {
      const o = (type as { options?: { index?: unknown; unique?: unknown } }).options;
      if (o?.index || o?.unique) list.push([path]);
    }
    out.set(m.collection.collectionName, list);
  }
  return out;
}

function supported(s: Shape, indexes: string[][]): boolean {
  if (s.or.length) return s.or.every((b) => supported({ ...b, eq: [...s.eq, ...b.eq], range: [...s.range, ...b.range], or: [] }, indexes));
  const usable = new Set([...s.eq, ...s.range]);
  return indexes.some((ix) => usable.has(ix[0]!));
}

/** Whole-collection reads by design, with the reason (matched on the printed shape). */
const BY_DESIGN: Array<[RegExp, string]> = [
  [/^merchants find \{status=\}$/, 'the daily recap reads every active merchant (all of them are recapped)'],
  [/^counters find \{\}$/, '/metrics reads its running totals: one small document per order status and attempt outcome'],
  [/^webhook_due find \{\}$/, "the webhook runner's start-up reconcile (reconcileDue) reads the ids of its due queue once: it holds only the undelivered webhooks"],
  [/^inbound_due find \{\}$/, "the intake runner's start-up reconcile reads the ids of its due queue once: it holds only the unprocessed inbound messages"],
  [/^outbox_due (count|find) \{\}( sort created)?$/, "/metrics: depth and oldest entry of the due queue, and the outbox runner's start-up reconcile (reconcileDue) reading its ids once: it holds only the unsent mails"],
];

describe('every query the app sends has an index', function () {
  this.timeout(120_000);
  const seen = new Map<string, Shape>();
  let recording = true;
  const logger = createLogger('silent');

  before(async function () {
    this.timeout(60_000);
    await mongoose.connect(testDbUri(), { serverSelectionTimeoutMS: 10_000, autoIndex: false, monitorCommands: true });
    await Promise.all(MODELS.map((m) => m.createIndexes()));
    // A deployment counts its orders once for /metrics (src/db/counters.ts); from then on, totals.
    await rebuildCounters();
    mongoose.connection.getClient().on('commandStarted', (e) => {
      const key = QUERY_COMMANDS[e.commandName];
      if (!key || !recording) return;
      const c = e.command as Record<string, unknown>;
      const coll = String(c[e.commandName]);
      const add = (s: Shape) => seen.set(label(s), s);
      if (e.commandName === 'update' || e.commandName === 'delete') {
        for (const u of c[key] as Array<{ q: Record<string, unknown> }>) add(shapeOf(coll, e.commandName, u.q));
      } else if (e.commandName === 'aggregate') {
        const pipeline = c.pipeline as Array<Record<string, unknown>>;
        const match = pipeline[0]?.$match as Record<string, unknown> | undefined;
        const sort = (pipeline[0]?.$match ? pipeline[1] : pipeline[0])?.$sort as Record<string, unknown> | undefined;
        add(shapeOf(coll, 'aggregate', match, sort));
      } else {
        add(shapeOf(coll, e.commandName, c[key] as Record<string, unknown>, c.sort as Record<string, unknown>));
      }
    });
  });
  after(async () => {
    await mongoose.connection.dropDatabase().catch(() => {});
    await mongoose.disconnect();
  });

  it('records a representative run and finds an index for each query shape', async () => {
    const repos = createRepositories();
    const acquirer = createSandboxAcquirer();
    const events = createEventsService({ repos });
    const orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:1', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: KEYS });
    const limits = { failuresPerOrder: 1000, failuresPerClient: 1000 };
    const checkout = createCheckoutService({ repos, acquirer, linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, limits });
    const refunds = createRefundService({ repos, acquirer, events });
    const orderAdmin = createOrderAdminService({ repos, orders, maxLinkLifetimeDays: 60, events });
    const commands = createCommandService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, events });
    const expiry = createExpiryJob({ repos, events, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, logger });
    const recap = createRecapService({ repos, mailDomain: MAIL_DOMAIN, logger });

    // A local webhook receiver (the first delivery is answered 500, so one is retried).
    let hooks = 0;
    const receiver = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hooks += 1;
        res.statusCode = hooks === 1 ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/paymail`;

    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Index Hotel', email: 'desk@index.example', timezone: 'Europe/Rome' });
    await Merchant.updateOne({ _id: created.id }, { $set: { webhookUrl: hookUrl, createdAt: new Date(Date.now() - 3 * 86_400_000) } });
    const merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;

    let seq = 0;
    const newOrder = async () => {
      seq += 1;
      const r = await orders.create(merchant, { amountMinor: 12_990, currency: 'EUR', reference: `QI-${seq}`, description: 'Room', customerEmail: `g${seq}@index.example`, customerName: 'Guest' }, { key: `qi:${seq}` });
      return r.order;
    };
    const card = (number: string): CheckoutForm => ({ number, expiry: EXPIRY, cvc: '913', holder: 'Anna Rossi', email: 'anna@index.example' });
    const open = async (o: { publicId: string }) => {
      const state = await checkout.open(o.publicId, Object.fromEntries(new URL(orders.linkFor(o as never)).searchParams));
      assert.equal(state.kind, 'payable');
      return state as Extract<typeof state, { kind: 'payable' }>;
    };

    // Intake and checkout: a declined then an approved payment, a refund.
    const paid = await newOrder();
    await checkout.pay(await open(paid), card('4000000000000002'), '127.0.0.1').catch(() => {});
    await checkout.pay(await open(paid), card('4242424242424242'), '127.0.0.1');
    await refunds.refund(merchant, paid._id, { amountMinor: 2_000, by: 'op@index.example' });
    // Issue 12 part 3, saved cards: saved on a payment, offered and paid in one click, charged by the
    // merchant (and the charge's repair scan), removed with the receipt's link.
    {
      const vaulted = createCheckoutService({ repos, acquirer: createSandboxAcquirer({ vault: repos.cardVault }), linkKeys: KEYS, mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor, events, limits });
      await Merchant.updateOne({ _id: merchant._id }, { $set: { savedCardsEnabled: true } });
      const m = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
      const forSaver = async (ref: string) => (await orders.create(m, { amountMinor: 1_000, currency: 'EUR', reference: ref, customerEmail: 'saver@index.example' }, { key: `qi:${ref}` })).order;
      const first = await forSaver('QI-SAVE-1');
      assert.equal((await vaulted.pay({ order: first, merchant: m }, card('4242424242424242'), '127.0.0.1', { saveCard: true })).kind, 'paid');
      const second = await forSaver('QI-SAVE-2');
      const cardId = (await vaulted.savedCardsFor({ order: second, merchant: m })).offers[0]!.cardId;
      assert.equal((await vaulted.payWithSavedCard({ order: second, merchant: m }, { cardId, cvc: '913' }, '127.0.0.1')).kind, 'paid');
      const paidSecond = (await Order.findById(second._id).lean<{ customerCode: string; payment: { savedCardId: string } }>())!;
      const charges = createSavedCardChargeService({ repos, orders, checkout: vaulted });
      assert.equal((await charges.chargeSavedCard(m, paidSecond.customerCode, { amountMinor: 500, currency: 'EUR', reference: 'QI-CHARGE-1' })).outcome, 'approved');
      await charges.repairInterrupted(0);
      const removal = createSavedCardRemoval({ repos, linkKeys: KEYS, vaultOf: vaulted.savedCardVault });
      const link = new URL(cardRemovalUrl('http://127.0.0.1:1', KEYS, paidSecond)!);
      const target = await removal.find(paidSecond.customerCode, cardId, { k: link.searchParams.get('k'), s: link.searchParams.get('s') });
      assert.equal(target.kind, 'found');
      if (target.kind === 'found') assert.equal(await removal.remove(target), true);
      await Merchant.updateOne({ _id: merchant._id }, { $set: { savedCardsEnabled: false } });
    }
    // A reply command by reference, a cancel from the back office, an expiry.
    const cancelled = await newOrder();
    await commands.findOrder(merchant._id, 'qi-2');
    await commands.findOrder(merchant._id, 'QI-1');
    await orderAdmin.cancel(merchant, cancelled._id, 'op@index.example');
    const expiring = await newOrder();
    await Order.updateOne({ _id: expiring._id }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    await expiry.runOnce();
    // Issue 13 parts 3 and 4: a reminder due (the job's $or branch on remindAt), the renewal of the
    // expired order (close claim freed, expired -> pending), the customer's request on another one.
    const reminded = await newOrder();
    await Order.updateOne({ _id: reminded._id }, { $set: { 'customer.email': 'guest@index.example', remindAt: new Date(Date.now() - 1000), expiresAt: new Date(Date.now() + 86_400_000 - 60_000) } });
    await expiry.runOnce();
    const renewals = createRenewalService({ repos, mailDomain: MAIL_DOMAIN, publicUrl: 'http://localhost:3000', maxLinkLifetimeDays: 60, linkFor: orders.linkFor, events });
    await renewals.renew((await Order.findById(expiring._id).lean<OrderDoc>())!, merchant, new Date(Date.now() + 7 * 86_400_000), 'merchant:qi');
    const asked = await newOrder();
    await Order.updateOne({ _id: asked._id }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    await renewals.request((await Order.findById(asked._id).lean<OrderDoc>())!, merchant, 'asker@index.example');
    await renewals.repair();
    // Issue 13 part 1, orders paid in parts: a deposit order created, part 1 paid, the balance opened
    // by the plan service (orders.openPart) and paid; a balance date, opened by the plan job's query
    // (orders.partsDue) and paid; the plan repair. The recap below then counts part payments
    // (its branch on plan.parts.payment.paidAt) and lists part-paid orders ({status, plan.nextDueAt}).
    {
      const plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60 });
      const later = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: 60, now: () => new Date(Date.now() + 3 * 86_400_000) });
      const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
      const planned = async (ref: string, plan: Record<string, unknown>) =>
        (await orders.create(merchant, { amountMinor: 50_000, currency: 'EUR', reference: ref, customerEmail: 'parts@index.example', plan } as never, { key: `qi:${ref}` })).order;
      const asked = await planned('QI-DEP-1', { deposit: { percent: 30 } });
      assert.equal((await checkout.pay(await open(asked), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      assert.equal((await plans.requestNext(await reload(asked._id), merchant, 'merchant:qi')).outcome, 'requested');
      assert.equal((await checkout.pay(await open(await reload(asked._id)), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      const tomorrow = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Rome' }).format(new Date(Date.now() + 86_400_000));
      const dated = await planned('QI-DEP-2', { deposit: { percent: 50 }, balanceDue: tomorrow });
      assert.equal((await checkout.pay(await open(dated), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      await later.repair();
      assert.equal(await later.openDue(), 1);
      assert.equal((await checkout.pay(await open(await reload(dated._id)), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      // One left partly paid, for the recap's "Part-paid orders".
      assert.equal((await checkout.pay(await open(await planned('QI-DEP-3', { deposit: { percent: 20 } })), card('4242424242424242'), '127.0.0.1')).kind, 'paid');
      assert.equal((await reload(asked._id)).status, 'paid');
    }
    // The crash repair's scans of unfinished transitions.
    await checkout.repairInterrupted(0);
    await refunds.repairInterrupted(0);
    // The back office's search and count; the daily recap (days of the last week are due).
    await repos.orders.search(merchant._id, {}, { skip: 0, limit: 20 });
    await repos.orders.count(merchant._id, {});
    await recap.runDue(new Date(Date.now() + 2 * 86_400_000));
    // Many merchants: the recap's pass without a merchant filter.
    await recap.buildRecaps(
      Array.from({ length: 101 }, (_, i) => ({ merchant: { ...merchant, _id: `${merchant._id}-${i}` }, date: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10) })),
      new Date(Date.now() + 2 * 86_400_000),
    );

    // The SMTP intake through a real submission door: a wrong password (AUTH throttle records),
    // an order mail (stored raw, claimed, parsed, order created, pay-link queued), the same mail
    // again (a duplicate), a reply command; then the start-up resume of unfinished messages.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-query-indexes-'));
    const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const authThrottle = createSmtpAuthThrottle({ repos, baseDelayMs: 1, maxDelayMs: 2 });
    const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    const door = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, production: false, logger, authThrottle });
    const port = await listen(door, 0);
    const submit = (mail: { subject: string; text: string; messageId: string }, pass = created.smtpPassword) =>
      nodemailer
        .createTransport({ host: '127.0.0.1', port, secure: false, auth: { user: created.smtpUser, pass }, tls: { rejectUnauthorized: false } })
        .sendMail({ from: 'desk@index.example', to: created.inboundAddress, ...mail });
    await assert.rejects(submit({ subject: 'Order', text: 'Amount: 1', messageId: '<qi-wrong@index.example>' }, 'wrong password'));
    const orderMail = { subject: 'Order', text: 'Amount: 49.00\nReference: QI-SMTP-1\nDescription: Dinner', messageId: '<qi-smtp-1@index.example>' };
    assert.match((await submit(orderMail)).response, /^250 /);
    await intake.idle();
    assert.match((await submit(orderMail)).response, /^250 /);
    await intake.idle();
    await submit({ subject: 'Re: Pay-link for order QI-SMTP-1', text: 'STATUS QI-SMTP-1', messageId: '<qi-smtp-2@index.example>' });
    await intake.idle();
    assert.equal(await Order.countDocuments({ merchantId: merchant._id, reference: 'QI-SMTP-1' }), 1);
    // The start-up reconcile of a runner that starts after a restart (every inbound message has its due entry).
    const restarted = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    await restarted.runOnce();
    await restarted.close();

    // A sealed request from the merchant's website (its nonce recorded), then the nonce sweep.
    const sealed = createSealedRequestService({ repos, orders });
    const fields: Record<string, string> = {
      merchant: merchant._id,
      reference: 'QI-WEB-1',
      amount: '4590',
      currency: 'EUR',
      description: 'Tea',
      success_url: 'https://shop.index.example/ok',
      cancel_url: 'https://shop.index.example/ko',
      ts: String(Math.floor(Date.now() / 1000)),
      nonce: 'qi-nonce-0001',
    };
    const sealText = Object.keys(fields).sort().map((k) => `${k}=${fields[k]}`).join('\n');
    await sealed.accept({ ...fields, seal: createHmac('sha256', merchant.sealKey!).update(sealText, 'utf8').digest('hex') });
    await sealed.sweep();

    // The back office: a failed and a good login (login attempts, user and session look-ups), a page, a logout.
    const bo = await startBackofficeApp();
    const client = new BoClient(bo.base);
    assert.equal((await client.login(created.adminEmail, 'not the password')).status, 401);
    assert.equal((await client.login(created.adminEmail, created.adminPassword)).status, 303);
    assert.equal((await client.get('/backoffice/orders')).status, 200);
    // Reminder settings: every open order of the merchant is looked at again (issue 13 part 3).
    await client.get('/backoffice/settings');
    assert.equal((await client.post('/backoffice/settings/reminders', { enabled: '1', daysBefore: '3, 1', unopenedHours: '48', autoRenewDays: '0' })).status, 303);
    await client.post('/backoffice/logout', {});
    await bo.close();

    // The outbox and webhook work runners (src/jobs/work-runner.ts) against a local SMTP sink and
    // the local receiver, while the merchant is suspended (the recap mail and the webhooks are
    // held), then after the resume (released); the first mail and webhook are retried.
    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://127.0.0.1:1' });
    const sink = await startSmtpSink();
    sink.rejectWith((n) => (n === 1 ? 451 : undefined));
    let offset = 0;
    const clock = () => new Date(Date.now() + offset);
    const mailer = createOutboxWorker({ repos, renderer, transport: createMailTransport({ outboundSmtpUrl: sink.url, production: false }), from: `paymail <no-reply@${MAIL_DOMAIN}>`, logger, now: clock });
    const webhooks = createWebhookWorker({ repos, logger, now: clock, timeoutMs: 2_000, backoff: () => 1_000, allowPrivateTargets: true });
    const drain = async () => {
      for (let i = 0; i < 20 && (await mailer.runOnce()) + (await webhooks.runOnce()) > 0; i++);
    };
    const suspension = createMerchantSuspensionService({ repos });
    await suspension.suspend(merchant._id, 'query-indexes test');
    await drain();
    const resumed = await suspension.resume(merchant._id);
    assert.ok((resumed.released?.mails ?? 0) + (resumed.released?.webhooks ?? 0) > 0, JSON.stringify(resumed.released));
    offset = 2 * 3_600_000;
    await drain();
    assert.ok(sink.received.length > 0 && sink.attempts.length > sink.received.length, 'mails sent, one retried');
    assert.ok(hooks >= 2, 'webhooks delivered, one retried');
    await sink.close();
    await closeDoor(door);
    await intake.close();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await rm(dataDir, { recursive: true, force: true });

    // The server API (issue 12 part 2): a key, a pay-link under an Idempotency-Key and its replay,
    // the order by reference, the list with filters and a cursor, a cancel and a refund, and the
    // per-key rate limit (its count and, once refused, the window's edge).
    const api = await startApiApp({ rateLimit: 12 });
    const apiKey = (await api.apiKeys.create(merchant._id)).key;
    const call = (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => api.request(method, `/api/v1${p}`, { key: apiKey, body, headers });
    const link = { reference: 'QI-API-1', amount: 1500, currency: 'EUR', delivery: 'merchant' };
    assert.equal((await call('POST', '/payment-links', link, { 'idempotency-key': 'qi-1' })).status, 201);
    assert.equal((await call('POST', '/payment-links', link, { 'idempotency-key': 'qi-1' })).status, 201);
    assert.equal((await call('GET', '/orders/QI-API-1')).status, 200);
    const firstPage = await call('GET', `/orders?limit=1&status=pending&since=${encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString())}`);
    assert.equal((await call('GET', `/orders?limit=1&cursor=${firstPage.body.nextCursor}`)).status, 200);
    assert.equal((await call('POST', '/orders/QI-API-1/cancel')).status, 200);
    assert.equal((await call('POST', '/orders/QI-1/refunds', { amount: 100 })).status, 201);
    for (let i = 0; i < 6; i++) await call('GET', '/orders/QI-1');
    assert.equal((await call('GET', '/orders/QI-1')).status, 429);
    await api.close();

    // The retention job's pass.
    await repos.retention.prune({ claimsDays: 90, sessionsDays: 7, loginAttemptsDays: 30, rateLimitDays: 7, outboxBodyDays: 30 }, new Date());
    // The metrics scrape.
    invalidateMetricsCache();
    const scraped = await registry.metrics();
    recording = false;

    // The running totals /metrics shows are those of the orders themselves.
    const sample = (name: string, label: string, value: string) => Number(new RegExp(`^${name}\\{${label}="${value}"\\} (\\S+)$`, 'm').exec(scraped)?.[1] ?? 0);
    for (const st of ['pending', 'paid', 'cancelled', 'expired'] as const) {
      assert.equal(sample('paymail_orders', 'status', st), await Order.countDocuments({ status: st }), `orders ${st}`);
    }
    const outcomes = await Order.aggregate<{ _id: string; n: number }>([{ $unwind: '$attempts' }, { $group: { _id: '$attempts.outcome', n: { $sum: 1 } } }]);
    assert.ok(outcomes.length >= 2, JSON.stringify(outcomes));
    for (const o of outcomes) assert.equal(sample('paymail_payment_attempts', 'outcome', o._id), o.n, `attempts ${o._id}`);

    const indexes = declaredIndexes();
    const lines: string[] = [];
    const missing: string[] = [];
    for (const [name, s] of [...seen].sort(([a], [b]) => a.localeCompare(b))) {
      const byDesign = BY_DESIGN.find(([re]) => re.test(name));
      const ok = supported(s, indexes.get(s.coll) ?? [['_id']]);
      lines.push(`${ok ? 'indexed  ' : byDesign ? 'by design' : 'NO INDEX '} ${name}${byDesign && !ok ? `  (${byDesign[1]})` : ''}`);
      if (!ok && !byDesign) missing.push(name);
    }
    console.log(`      query shapes (${seen.size}):\n${lines.map((l) => `        ${l}`).join('\n')}`);
    assert.ok(seen.size > 20, `a representative run sends more than ${seen.size} query shapes`);
    assert.deepEqual(missing, [], `query shapes without a declared index:\n${missing.join('\n')}`);
  });
});
