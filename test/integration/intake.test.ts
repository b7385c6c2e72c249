import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { createLogger } from '../../src/logger.ts';
import { parseInboundMail } from '../../src/mail/parse-worker.ts';
import { createIntakeService, extractMessageId, intakeBackoff } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';

describe('intake service', () => {
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 'k'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  let merchant: MerchantDoc;
  let n = 0;

  before(async () => {
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Bottega', email: 'owner@bottega.example', locale: 'it' });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  afterEach(() => intake.idle());
  after(() => intake.close());

  function mail(body: string, headers: Record<string, string> = {}): Buffer {
    const all = { From: 'owner@bottega.example', To: `orders+${merchant.alias}@${MAIL_DOMAIN}`, Subject: 'Ordine', 'Message-ID': `<m${++n}.${Date.now()}@bottega.example>`, ...headers };
    const head = Object.entries(all)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n');
    return Buffer.from(`${head}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.replace(/\n/g, '\r\n')}\r\n`);
  }
  const store = (raw: Buffer) => intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });

  describe('extractMessageId', () => {
    const cases: Array<[string, string | undefined]> = [
      ['Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody', '<a@b>'],
      ['message-id:   <a@b>  \nSubject: x\n\nbody', '<a@b>'],
      ['Subject: x\r\nMessage-Id:\r\n <folded@b>\r\n\r\nbody', '<folded@b>'],
      ['Subject: x\r\n\r\nMessage-ID: <in-body@b>', undefined],
      ['Subject: x\r\n\r\n', undefined],
      ['Message-ID: <has space@b>\r\n\r\n', undefined],
    ];
    for (const [raw, expected] of cases) {
      it(JSON.stringify(raw.slice(0, 30)), () => assert.equal(extractMessageId(Buffer.from(raw)), expected));
    }
  });

  it('stores, then creates the order and queues its pay-link mail', async () => {
    const raw = mail('Importo: 10,00\nRiferimento: INT-1');
    const stored = await store(raw);
    assert.equal(stored.duplicate, false);
    const doc = await InboundMessage.findById(stored.id).lean();
    assert.equal(doc?.messageKey, extractMessageId(raw));
    await intake.idle();
    const order = await Order.findOne({ merchantId: merchant._id, reference: 'INT-1' }).lean();
    assert.equal(order?.amountMinor, 1000);
    assert.equal(order?.source?.inboundMessageId, stored.id);
    assert.equal(await Outbox.countDocuments({ orderId: order?._id, template: 'paylink' }), 1);
    assert.equal(await Outbox.countDocuments({ dedupeKey: `intake-reply:${stored.id}` }), 0);
    const processed = await InboundMessage.findById(stored.id).lean();
    assert.equal(processed?.status, 'processed');
    assert.deepEqual(processed?.result?.orderIds, [order?._id]);
  });

  it('keys a message without Message-ID by the hash of its bytes', async () => {
    const raw = mail('Importo: 11', { 'Message-ID': '' });
    const first = await store(raw);
    const again = await store(raw);
    assert.deepEqual(again, { id: first.id, duplicate: true });
    assert.match((await InboundMessage.findById(first.id).lean())!.messageKey, /^sha256:[0-9a-f]{64}$/);
  });

  it('stores the same Message-ID once and creates one order', async () => {
    const raw = mail('Importo: 12\nRif: INT-DUP');
    const [a, b] = await Promise.all([store(raw), store(raw)]);
    assert.equal(a.id, b.id);
    assert.deepEqual([a.duplicate, b.duplicate].sort(), [false, true]);
    await intake.idle();
    assert.equal(await Order.countDocuments({ reference: 'INT-DUP' }), 1);
  });

  it('replies to the merchant naming every problem, threaded on the original', async () => {
    const raw = mail('Buongiorno\nImporto: dieci\nEmail cliente: nope\n', { Subject: 'Ordine sbagliato' });
    const stored = await store(raw);
    await intake.idle();
    assert.equal(await Order.countDocuments({ 'source.inboundMessageId': stored.id }), 0);
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${stored.id}` }).lean();
    assert.ok(reply);
    assert.equal(reply.template, 'intake-reply');
    assert.equal(reply.locale, 'it');
    assert.deepEqual(reply.to, ['owner@bottega.example']);
    assert.equal(reply.inReplyTo, extractMessageId(raw));
    assert.deepEqual(reply.references, [extractMessageId(raw)]);
    const data = reply.data as { subject: string; created: unknown[]; problems: Array<Record<string, unknown>> };
    assert.equal(data.subject, 'Ordine sbagliato');
    assert.deepEqual(data.created, []);
    assert.deepEqual(
      data.problems.map((p) => [p.field, p.code, p.value, p.line]),
      [
        ['amount', 'AMOUNT_INVALID', 'dieci', 2],
        ['customerEmail', 'ORDER_EMAIL_INVALID', 'nope', 3],
      ],
    );
    const doc = await InboundMessage.findById(stored.id).lean();
    assert.equal(doc?.status, 'processed');
    assert.equal((doc?.result?.problems as unknown[]).length, 2);
  });

  it('tells the merchant when the reference already has an open order', async () => {
    await store(mail('Importo: 20\nRif: INT-REF'));
    await intake.idle();
    const second = await store(mail('Importo: 20\nRif: INT-REF'));
    await intake.idle();
    assert.equal(await Order.countDocuments({ reference: 'INT-REF' }), 1);
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${second.id}` }).lean();
    const data = reply?.data as { created: Array<{ reference: string; duplicate?: string; link: string }>; problems: unknown[] };
    assert.equal(data.created.length, 1);
    assert.equal(data.created[0]?.reference, 'INT-REF');
    assert.equal(data.created[0]?.duplicate, 'reference');
    assert.match(data.created[0]!.link, /^http:\/\/localhost:3000\//);
    assert.deepEqual(data.problems, []);
  });

  it('reads the Outlook HTML fixture', async () => {
    const raw = await readFile(new URL('../fixtures/order-mail/outlook-html.eml', import.meta.url));
    await store(raw);
    await intake.idle();
    const order = await Order.findOne({ reference: 'ORD-3003' }).lean();
    assert.equal(order?.amountMinor, 8900);
    assert.equal(order?.description, 'Lampada "Arco" & paralume');
  });

  it('a restarted runner processes what was stored but never processed, once', async () => {
    // Messages left by a run (or a version) whose due entries are gone: the runner's start-up
    // reconcile gives them entries, then they are claimed like any other.
    const raw = mail('Importo: 30\nRif: INT-RESUME');
    const inserted = await InboundMessage.create({
      merchantId: merchant._id,
      door: 'submission',
      messageKey: extractMessageId(raw)!,
      messageId: extractMessageId(raw),
      raw,
      size: raw.length,
      status: 'received',
    });
    // A message claimed by a live worker (lease not expired) is left alone.
    const leased = mail('Importo: 31\nRif: INT-LEASED');
    await InboundMessage.create({
      merchantId: merchant._id, door: 'submission', messageKey: extractMessageId(leased)!, raw: leased, size: leased.length,
      status: 'processing', leaseUntil: new Date(Date.now() + 60_000),
    });
    // …but one whose worker died (lease expired) is taken over.
    const stale = mail('Importo: 32\nRif: INT-STALE');
    await InboundMessage.create({
      merchantId: merchant._id, door: 'submission', messageKey: extractMessageId(stale)!, raw: stale, size: stale.length,
      status: 'processing', leaseUntil: new Date(Date.now() - 1_000), attempts: 1,
    });
    const restarted = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    try {
      assert.equal(await restarted.runOnce(), 2);
      assert.equal(await restarted.runOnce(), 0);
    } finally {
      await restarted.close();
    }
    assert.equal(await Order.countDocuments({ reference: 'INT-RESUME' }), 1);
    assert.equal(await Order.countDocuments({ reference: 'INT-STALE' }), 1);
    assert.equal(await Order.countDocuments({ reference: 'INT-LEASED' }), 0);
    assert.equal((await InboundMessage.findById(inserted._id).lean())?.status, 'processed');
  });

  it('the started runner processes a stored message at once, without waiting for its poll', async () => {
    const woken = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, pollMs: 60_000 });
    woken.start();
    try {
      // Let the first poll (start-up reconcile, nothing due) pass: from here on only a wake-up helps.
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await woken.store({ merchantId: merchant._id, door: 'submission', raw: mail('Importo: 33\nRif: INT-WAKE'), envelope: { rcptTo: [] } });
      while (Date.now() - started < 10_000 && (await Order.countDocuments({ reference: 'INT-WAKE' })) === 0) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(await Order.countDocuments({ reference: 'INT-WAKE' }), 1);
      assert.ok(Date.now() - started < 10_000);
    } finally {
      await woken.close();
    }
  });

  it('mail stored while the runner is busy opens its other lanes (INTAKE_CONCURRENCY at once, not one)', async () => {
    let parsing = 0;
    let most = 0;
    const busy = createIntakeService({
      repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, pollMs: 60_000, concurrency: 3,
      parseMail: async (raw) => {
        most = Math.max(most, ++parsing);
        await new Promise((r) => setTimeout(r, 400));
        parsing--;
        return parseInboundMail(raw);
      },
    });
    busy.start();
    try {
      await new Promise((r) => setTimeout(r, 200));
      const send = (i: number) => busy.store({ merchantId: merchant._id, door: 'submission', raw: mail(`Importo: 3${i}\nRif: INT-LANES-${i}`), envelope: { rcptTo: [] } });
      // The first mail takes one lane; the others arrive while it is being processed.
      await send(0);
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all([send(1), send(2), send(3)]);
      const started = Date.now();
      while (Date.now() - started < 10_000 && (await Order.countDocuments({ reference: /^INT-LANES-/ })) < 4) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await Order.countDocuments({ reference: /^INT-LANES-/ }), 4);
      assert.ok(most >= 2, `at most ${most} message(s) processed at once`);
      assert.ok(most <= 3, `${most} messages processed at once, over INTAKE_CONCURRENCY`);
    } finally {
      await busy.close();
    }
  });

  it('a failed attempt goes back to received with a stored retry time, taken again once it is due', async () => {
    let clock = new Date();
    // The database hiccup: the first parse throws a driver error (retried, never given up).
    let failures = 1;
    const flaky = createIntakeService({
      repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, now: () => clock,
      parseMail: async (raw) => {
        if (failures-- > 0) throw Object.assign(new Error('connection reset'), { name: 'MongoNetworkError' });
        return parseInboundMail(raw);
      },
    });
    try {
      const stored = await flaky.store({ merchantId: merchant._id, door: 'submission', raw: mail('Importo: 34\nRif: INT-RETRY'), envelope: { rcptTo: [] } });
      assert.equal(await flaky.runOnce(), 1);
      const failed = await InboundMessage.findById(stored.id).lean();
      assert.equal(failed?.status, 'received');
      assert.equal(failed?.attempts, 1);
      assert.equal(failed?.nextAttemptAt?.getTime(), clock.getTime() + intakeBackoff(1));
      // Not due yet: the runner leaves it.
      assert.equal(await flaky.runOnce(), 0);
      clock = new Date(clock.getTime() + intakeBackoff(1));
      assert.equal(await flaky.runOnce(), 1);
      const done = await InboundMessage.findById(stored.id).lean();
      assert.equal(done?.status, 'processed');
      assert.equal(done?.nextAttemptAt, undefined);
      assert.equal(await Order.countDocuments({ reference: 'INT-RETRY' }), 1);
    } finally {
      await flaky.close();
    }
  });

  it('re-processing after a crash creates no second order and re-queues a lost pay-link mail', async () => {
    const stored = await store(mail('Importo: 40\nRif: INT-CRASH'));
    await intake.idle();
    const order = await Order.findOne({ reference: 'INT-CRASH' }).lean();
    // As if the process died after creating the order but before queueing its mail and marking it.
    await Outbox.deleteOne({ orderId: order?._id });
    await InboundMessage.updateOne({ _id: stored.id }, { $set: { status: 'received' } });
    const outcome = await intake.process(stored.id);
    assert.equal(outcome.status, 'processed');
    assert.equal(await Order.countDocuments({ reference: 'INT-CRASH' }), 1);
    assert.equal(await Outbox.countDocuments({ orderId: order?._id, template: 'paylink' }), 1);
    assert.equal((await intake.process(stored.id)).status, 'skipped');
  });

  it('marks a message failed when its merchant is gone', async () => {
    const raw = mail('Importo: 50');
    const doc = await InboundMessage.create({
      merchantId: 'mer_GONE', door: 'submission', messageKey: extractMessageId(raw)!, raw, size: raw.length, status: 'received',
    });
    const outcome = await intake.process(String(doc._id));
    assert.equal(outcome.status, 'failed');
    const after = await InboundMessage.findById(doc._id).lean();
    assert.equal(after?.status, 'failed');
    assert.match(after?.lastError ?? '', /mer_GONE/);
  });
});
