// Reminders the merchant tunes (issue 13 part 3), against the real database, the real outbox worker
// and SMTP relay, and the real HTTP app: the default 3 and 1 days before expiry, an order's own
// `Reminders: 5, 2` and `Reminders: off`, the reminder when the link was not opened, never after
// payment or cancellation, at most one a day in the merchant's zone, each exactly once with two
// expiry-job instances and after a crash, the customer's stop link (GET changes nothing, POST and the
// RFC 8058 one-click header stop them), the settings form and the back office's history.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Claim } from '../../src/db/claims.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { OutboxDue } from '../../src/db/due-queue.ts';
import { addDays, localDate, localTime } from '../../src/domain/local-day.ts';
import { parseOrderMail } from '../../src/domain/order-mail.ts';
import { remindersOffUrl } from '../../src/domain/reminder-link.ts';
import { createExpiryJob, reminderDayKey } from '../../src/jobs/expiry.job.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase, repos } from '../helpers/db.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';
import { type BackofficeApp, BoClient, KEYS, MAIL_DOMAIN, startBackofficeApp, textOf } from './backoffice-client.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const logger = createLogger('silent');
const TZ = 'Europe/Rome';

describe('reminders the merchant tunes (issue 13 part 3)', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let clock = new Date();
  const now = () => clock;
  let seq = 0;
  let relay: SmtpSink;
  let renderer: MailRenderer;

  const job = (owner?: string, faults?: (p: string) => void) =>
    createExpiryJob({
      repos,
      events: createEventsService({ repos, now }),
      mailDomain: MAIL_DOMAIN,
      linkFor: (o) => app.orders.linkFor(o),
      remindersOffFor: (o) => remindersOffUrl(app.base, KEYS, o.publicId),
      logger,
      now,
      ...(owner ? { owner } : {}),
      ...(faults ? { faults } : {}),
    });

  async function setMerchant(set: Record<string, unknown>) {
    await Merchant.updateOne({ _id: merchant._id }, { $set: set });
    merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
  }

  async function newOrder(expiresAt: Date, extra: { customerEmail?: string; reminders?: { off?: boolean; daysBefore?: number[] } } = {}): Promise<OrderDoc> {
    seq++;
    const r = await app.orders.create(
      merchant,
      { amountMinor: 9000, currency: 'EUR', reference: `RM-${seq}`, customerName: 'Giulia', customerEmail: `guest${seq}@example.org`, expiresAt, ...extra },
      { key: `rm:${seq}` },
    );
    return r.order;
  }
  const reminders = (orderId: string) => Outbox.find({ template: 'reminder', orderId }).sort({ createdAt: 1 }).lean<OutboxDoc[]>();
  const reload = async (id: string) => (await Order.findById(id).lean<OrderDoc>())!;
  const slotOf = (m: OutboxDoc) => m.dedupeKey.split(':').slice(2).join(':');

  before(async () => {
    app = await startBackofficeApp({ now });
    relay = await startSmtpSink();
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: app.base });
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'B&B Aurora', email: 'desk@aurora.example', locale: 'it' });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  after(async () => {
    await app.close();
    await relay.close();
  });
  beforeEach(async () => {
    clock = new Date();
    await setMerchant({ remindersEnabled: true, reminderDaysBefore: [3, 1], unopenedReminderHours: 0 });
  });

  it('defaults: one reminder 3 days and one 1 day before expiry, each once, saying why', async () => {
    await Merchant.updateOne({ _id: merchant._id }, { $unset: { remindersEnabled: 1, reminderDaysBefore: 1, unopenedReminderHours: 1 } });
    merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    const order = await newOrder(new Date(Date.now() + 7 * DAY));
    await Order.updateOne({ _id: order._id }, { $set: { viewedAt: new Date() } }); // opened: no unopened reminder
    const createdAt = (order as { createdAt?: Date }).createdAt!;
    assert.ok(Math.abs((await reload(order._id)).remindAt!.getTime() - (createdAt.getTime() + 48 * HOUR)) < 1_000, 'the first check: the unopened slot (48 hours by default)');

    clock = new Date(order.expiresAt.getTime() - 3 * DAY - HOUR);
    assert.equal((await job().runOnce()).reminded, 0, 'not yet');
    clock = new Date(order.expiresAt.getTime() - 3 * DAY + 60_000);
    await job().runOnce();
    await job().runOnce();
    let sent = await reminders(order._id);
    assert.deepEqual(sent.map(slotOf), [`before-3d@${Math.floor(order.expiresAt.getTime() / 1000)}`]);
    assert.equal((sent[0]!.data as { daysBefore: number }).daysBefore, 3);
    assert.equal((await reload(order._id)).remindAt?.getTime(), order.expiresAt.getTime() - DAY, 'next: the 1-day slot');

    clock = new Date(order.expiresAt.getTime() - DAY + 60_000);
    await job().runOnce();
    clock = new Date(order.expiresAt.getTime() - HOUR);
    await job().runOnce();
    sent = await reminders(order._id);
    assert.equal(sent.length, 2);
    const after = await reload(order._id);
    assert.equal(after.reminders?.length, 2);
    assert.equal(after.remindAt, undefined, 'no slot left');
    const rendered = await renderer.render({ template: 'reminder', locale: 'it', data: sent[1]!.data as Record<string, unknown> });
    assert.match(rendered.text, /Ti scriviamo 1 giorno prima della scadenza del link\./);
    assert.match(rendered.text, /Interrompi i promemoria:\n\S+\/reminders\/off\//);
  });

  it('an order mail’s own plan: "Reminders: 5, 2" in any of the five languages, and "Reminders: off"', async () => {
    for (const [line, days] of [['Reminders: 5, 2', [5, 2]], ['Promemoria: 5 e 2 giorni', [5, 2]], ['Rappels : 2, 5', [5, 2]], ['Erinnerungen: 5; 2', [5, 2]], ['Recordatorios: 5 y 2', [5, 2]]] as const) {
      const parsed = parseOrderMail({ text: `Amount: 90\n${line}`, defaultCurrency: 'EUR', now: new Date(), maxLifetimeDays: 60, timeZone: TZ });
      assert.deepEqual(parsed.draft?.reminders, { daysBefore: days }, line);
    }
    for (const line of ['Reminders: off', 'Promemoria: no', 'Rappels: aucun', 'Erinnerungen: aus', 'Recordatorios: ninguno']) {
      const parsed = parseOrderMail({ text: `Amount: 90\n${line}`, defaultCurrency: 'EUR', now: new Date(), maxLifetimeDays: 60, timeZone: TZ });
      assert.deepEqual(parsed.draft?.reminders, { off: true }, line);
    }
    const bad = parseOrderMail({ text: 'Amount: 90\nReminders: tomorrow', defaultCurrency: 'EUR', now: new Date(), maxLifetimeDays: 60, timeZone: TZ });
    assert.deepEqual(bad.problems.map((p) => p.code), ['ORDER_REMINDERS_INVALID']);

    const own = await newOrder(new Date(Date.now() + 10 * DAY), { reminders: { daysBefore: [5, 2] } });
    const off = await newOrder(new Date(Date.now() + 10 * DAY), { reminders: { off: true } });
    assert.equal((await reload(off._id)).remindAt, undefined);
    for (const at of [5, 3, 2, 1]) {
      clock = new Date(own.expiresAt.getTime() - at * DAY + 60_000);
      await job().runOnce();
    }
    const tag = Math.floor(own.expiresAt.getTime() / 1000);
    assert.deepEqual((await reminders(own._id)).map(slotOf), [`before-5d@${tag}`, `before-2d@${tag}`], 'its own days, not the merchant’s 3 and 1');
    assert.equal((await reminders(off._id)).length, 0, 'Reminders: off');
  });

  it('an order mail’s Reminders line reaches the order through the intake (Promemoria: off, Rappels : 4, 2)', async () => {
    const intake = createIntakeService({ repos, orders: app.orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    try {
      const store = async (text: string) => {
        const raw = Buffer.from(`From: desk@aurora.example\r\nTo: orders@${MAIL_DOMAIN}\r\nSubject: Order\r\nMessage-ID: <rm${++seq}.${Date.now()}@aurora.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`);
        await intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
        await intake.idle();
      };
      await store('Importo: 80\nRiferimento: MAIL-OFF\nEmail: a@example.org\nPromemoria: off');
      await store('Montant : 80\nRéférence : MAIL-DAYS\nCourriel : b@example.org\nRappels : 4, 2');
      const off = (await Order.findOne({ merchantId: merchant._id, reference: 'MAIL-OFF' }).lean<OrderDoc>())!;
      const days = (await Order.findOne({ merchantId: merchant._id, reference: 'MAIL-DAYS' }).lean<OrderDoc>())!;
      assert.equal(off.reminderPlan?.off, true);
      assert.equal(off.remindAt, undefined);
      assert.deepEqual([...(days.reminderPlan?.daysBefore ?? [])], [4, 2]);
      assert.equal(days.remindAt?.getTime(), days.expiresAt.getTime() - 4 * DAY);
    } finally {
      await intake.close();
    }
  });

  it('one reminder after creation when the link was not opened in time, none once it was opened', async () => {
    await setMerchant({ unopenedReminderHours: 24, reminderDaysBefore: [] });
    const unopened = await newOrder(new Date(Date.now() + 7 * DAY));
    const opened = await newOrder(new Date(Date.now() + 7 * DAY));
    clock = new Date(Date.now() + 23 * HOUR);
    await job().runOnce();
    assert.equal((await reminders(unopened._id)).length, 0, 'not before 24 hours');
    await Order.updateOne({ _id: opened._id }, { $set: { viewedAt: clock } });
    clock = new Date(Date.now() + 25 * HOUR);
    await job().runOnce();
    const sent = await reminders(unopened._id);
    assert.deepEqual(sent.map(slotOf), ['unopened']);
    assert.equal((sent[0]!.data as { kind: string }).kind, 'unopened');
    assert.equal((await reminders(opened._id)).length, 0, 'opened: no reminder');
    clock = new Date(Date.now() + 3 * DAY);
    await job().runOnce();
    assert.equal((await reminders(unopened._id)).length, 1, 'once');
  });

  it('open orders stored before reminder checks existed are scheduled at start, except those the old 24-hour reminder covered', async () => {
    const legacy = await newOrder(new Date(Date.now() + 7 * DAY));
    const lastDay = await newOrder(new Date(Date.now() + 20 * HOUR));
    await Order.updateMany({ _id: { $in: [legacy._id, lastDay._id] } }, { $unset: { remindAt: 1 } });
    clock = new Date();
    const fresh = job();
    await fresh.runOnce();
    assert.equal((await reload(legacy._id)).remindAt?.getTime(), legacy.expiresAt.getTime() - 3 * DAY, 'looked at, and its first slot is next');
    assert.equal((await reload(lastDay._id)).remindAt, undefined, 'in its last day: the old job reminded it already');
    clock = new Date(legacy.expiresAt.getTime() - 3 * DAY + 60_000);
    await fresh.runOnce();
    assert.equal((await reminders(legacy._id)).length, 1);
    assert.equal((await reminders(lastDay._id)).length, 0);
  });

  it('a renewed order counts its reminders from the renewal: nothing at once, then its new expiry’s slots', async () => {
    await setMerchant({ unopenedReminderHours: 48 });
    const order = await newOrder(new Date(Date.now() + 2 * HOUR));
    clock = new Date(order.expiresAt.getTime() + 60_000);
    await job().runOnce();
    assert.equal((await reload(order._id)).status, 'expired');
    clock = new Date(clock.getTime() + 5 * DAY); // renewed days later, never opened
    const r = await app.renewals.renew(await reload(order._id), merchant, new Date(clock.getTime() + 7 * DAY), 'merchant:test');
    assert.equal(r.kind, 'renewed');
    const renewed = await reload(order._id);
    clock = new Date(clock.getTime() + HOUR);
    await job().runOnce();
    assert.equal((await reminders(order._id)).length, 0, 'the renewed link was just mailed: no "not opened" reminder from the original creation');
    clock = new Date(renewed.expiresAt.getTime() - 3 * DAY + 60_000);
    await job().runOnce();
    assert.deepEqual((await reminders(order._id)).map(slotOf), [`before-3d@${Math.floor(renewed.expiresAt.getTime() / 1000)}`], 'the 48-hour slot counts from the renewal and is covered by the later one');
  });

  it('never after payment or cancellation', async () => {
    const paid = await newOrder(new Date(Date.now() + 7 * DAY));
    const cancelled = await newOrder(new Date(Date.now() + 7 * DAY));
    await Order.updateOne({ _id: paid._id }, { $set: { status: 'paid', openReference: paid._id } });
    await repos.orders.markCancelled(cancelled._id, new Date());
    clock = new Date(paid.expiresAt.getTime() - DAY + 60_000);
    await job().runOnce();
    assert.equal((await reminders(paid._id)).length, 0);
    assert.equal((await reminders(cancelled._id)).length, 0);
  });

  it('at most one reminder a day in the merchant’s time zone: a second due slot waits for the next day', async () => {
    await setMerchant({ unopenedReminderHours: 1, reminderDaysBefore: [1] });
    // A local day after tomorrow: the unopened slot is due at 10:00, the 1-day slot at 11:00.
    const day = addDays(localDate(new Date(), TZ), 2);
    const t1 = localTime(day, 10, TZ);
    const order = await newOrder(new Date(t1.getTime() + HOUR + DAY));
    await Order.updateOne({ _id: order._id }, { $set: { remindAt: new Date(0) } });
    clock = t1;
    await job().runOnce();
    clock = new Date(t1.getTime() + 3 * HOUR);
    await job().runOnce();
    assert.deepEqual((await reminders(order._id)).map(slotOf), ['unopened'], 'the 1-day slot waits: one a day');
    assert.equal((await reload(order._id)).remindAt?.getTime(), localTime(addDays(day, 1), 0, TZ).getTime(), 'until the next local midnight');
    clock = new Date(localTime(addDays(day, 1), 0, TZ).getTime() + 60_000);
    await job().runOnce();
    const sent = await reminders(order._id);
    assert.equal(sent.length, 2, 'the next day it goes');
    assert.match(slotOf(sent[1]!), /^before-1d@/);
  });

  it('each reminder exactly once with two instances, and once after a crash between claim and mail', async () => {
    const raced = await newOrder(new Date(Date.now() + 7 * DAY));
    clock = new Date(raced.expiresAt.getTime() - 3 * DAY + 60_000);
    const runs = await Promise.all([job('a').runOnce(), job('b').runOnce()]);
    assert.equal(runs[0]!.reminded + runs[1]!.reminded, 1, 'one instance sends it');
    assert.equal((await reminders(raced._id)).length, 1);
    assert.equal((await reload(raced._id)).reminders?.length, 1);

    clock = new Date();
    const crashed = await newOrder(new Date(Date.now() + 7 * DAY));
    clock = new Date(crashed.expiresAt.getTime() - 3 * DAY + 60_000);
    let crashedAt = '';
    await job('c', (p) => {
      if (p === 'remind:claimed') {
        crashedAt = p;
        throw new Error('crash');
      }
    }).runOnce();
    assert.equal(crashedAt, 'remind:claimed');
    assert.equal((await reminders(crashed._id)).length, 0, 'crashed before the mail');
    const day = reminderDayKey(crashed._id, localDate(clock, TZ));
    assert.equal((await Claim.findById(day).lean())?.applied, false);
    await job('d').runOnce();
    assert.equal((await reminders(crashed._id)).length, 0, 'another instance waits while the claim may be in progress');
    clock = new Date(clock.getTime() + 2 * 60_000);
    await job('d').runOnce();
    await job('e').runOnce();
    assert.equal((await reminders(crashed._id)).length, 1, 'finished once');
    assert.equal((await Claim.findById(day).lean())?.applied, true);
  });

  it('the stop link: a GET changes nothing, the POST stops reminders; the mail carries RFC 8058 one-click headers', async () => {
    const order = await newOrder(new Date(Date.now() + 7 * DAY));
    clock = new Date(order.expiresAt.getTime() - 3 * DAY + 60_000);
    await job().runOnce();
    const [mail] = await reminders(order._id);
    const url = remindersOffUrl(app.base, KEYS, order.publicId);
    assert.equal(mail!.listUnsubscribe, url);

    // On the wire: the real worker through a real relay.
    await OutboxDue.deleteMany({ _id: { $ne: mail!._id } });
    const worker = createOutboxWorker({ repos, renderer, transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }), from: `paymail <no-reply@${MAIL_DOMAIN}>`, logger });
    await worker.runOnce();
    const wire = await relay.waitFor((m) => m.messageId === mail!.messageId, 10_000);
    const head = wire.raw.toString('utf8').split('\r\n\r\n')[0]!.replace(/\r\n\s+/g, ' ');
    assert.match(head, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
    assert.match(head, new RegExp(`List-Unsubscribe: <${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>`));
    assert.ok(wire.parsed.text?.includes(url), 'the link is in the text');

    const offPath = url.slice(app.base.length);
    const client = new BoClient(app.base);
    const page = await client.get(offPath);
    assert.equal(page.status, 200);
    assert.match(textOf(page.html), /Interrompere i promemoria di pagamento\?/);
    assert.equal((await reload(order._id)).remindersOffAt, undefined, 'a GET (a link scanner) changes nothing');
    const tampered = await client.request('POST', offPath.replace(/s=[^&]+/, 's=' + 'A'.repeat(43)), { 'List-Unsubscribe': 'One-Click' });
    assert.equal(tampered.status, 404);
    assert.equal((await reload(order._id)).remindersOffAt, undefined);
    // What a mail client's one-click POST sends (no cookie, no token).
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
    assert.equal(res.status, 200);
    assert.ok((await reload(order._id)).remindersOffAt, 'stopped');
    clock = new Date(order.expiresAt.getTime() - DAY + 60_000);
    await job().runOnce();
    assert.equal((await reminders(order._id)).length, 1, 'no more reminders');
  });

  it('the settings form changes the merchant’s reminders and open orders follow; the order page shows each reminder', async () => {
    const client = new BoClient(app.base);
    const password = 'reminders-admin-pass-1';
    await MerchantUser.create({ merchantId: merchant._id, email: 'admin@aurora.example', passwordHash: await hashPassword(password), role: 'admin' });
    assert.equal((await client.login('admin@aurora.example', password)).status, 303);
    const order = await newOrder(new Date(Date.now() + 7 * DAY));
    await Order.updateOne({ _id: order._id }, { $set: { viewedAt: new Date() } });
    const settings = await client.get('/backoffice/settings');
    assert.match(settings.html, /id="reminders-form"/);
    const bad = await client.post('/backoffice/settings/reminders', { enabled: '1', daysBefore: '40', unopenedHours: '0', autoRenewDays: '0' });
    assert.equal(bad.status, 422);
    assert.match(textOf(bad.html), /fino a 5 numeri da 1 a 30|up to 5 numbers from 1 to 30/);
    const ok = await client.post('/backoffice/settings/reminders', { enabled: '1', daysBefore: '4', unopenedHours: '0', autoRenewDays: '3' });
    assert.equal(ok.status, 303);
    merchant = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    assert.deepEqual([...(merchant.reminderDaysBefore ?? [])], [4]);
    assert.equal(merchant.autoRenewDays, 3);
    assert.ok((await reload(order._id)).remindAt!.getTime() <= Date.now(), 'open orders are looked at again');
    clock = new Date(Date.now() + 60_000);
    await job().runOnce();
    assert.equal((await reload(order._id)).remindAt?.getTime(), order.expiresAt.getTime() - 4 * DAY, 'the new settings apply to it');
    clock = new Date(order.expiresAt.getTime() - 4 * DAY + 60_000);
    await job().runOnce();
    await Outbox.updateOne({ template: 'reminder', orderId: order._id }, { $set: { status: 'sent', sentAt: clock } });
    clock = new Date(); // the session lives on the real clock
    const detail = await client.get(`/backoffice/orders/${order._id}`);
    assert.equal(detail.status, 200);
    // The create-link form takes the order's own plan too.
    await client.get('/backoffice/orders/new');
    const refused = await client.post('/backoffice/orders', { amount: '80', reference: 'BO-REM-1', customerEmail: 'bo@example.org', delivery: 'merchant', reminders: 'daily' });
    assert.equal(refused.status, 422);
    const made = await client.post('/backoffice/orders', { amount: '80', reference: 'BO-REM-1', customerEmail: 'bo@example.org', delivery: 'merchant', reminders: '5, 2' });
    assert.equal(made.status, 303);
    assert.deepEqual([...((await Order.findOne({ merchantId: merchant._id, reference: 'BO-REM-1' }).lean<OrderDoc>())!.reminderPlan?.daysBefore ?? [])], [5, 2]);
    assert.match(textOf(detail.html), new RegExp(`Promemoria di pagamento \\(4 giorni prima della scadenza\\) inviato a ${order.customer!.email!.replace('.', '\\.')}|Payment reminder \\(4 days before expiry\\) mailed to`));
  });
});
