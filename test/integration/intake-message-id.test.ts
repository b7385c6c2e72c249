// Duplicate detection is keyed on the Message-ID plus a hash of the body: the same mail delivered
// again (a retry, another relay adding its own Received lines) stays one message, while a
// different mail under a re-used Message-ID (scripts, broken clients) is processed as a new one
// and the reply tells the merchant the Message-ID was re-used.
import assert from 'node:assert/strict';
import path from 'node:path';
import mongoose from 'mongoose';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { createLogger } from '../../src/logger.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';

describe('intake: re-used Message-ID', () => {
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
    const created = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Shop', email: 'owner@shop.example' });
    merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
  });
  afterEach(() => intake.idle());
  after(() => intake.close());

  function mail(body: string, messageId: string, extraHeaders = ''): Buffer {
    return Buffer.from(
      `${extraHeaders}From: owner@shop.example\r\nTo: orders+${merchant.alias}@${MAIL_DOMAIN}\r\nSubject: Order\r\n` +
        `Message-ID: ${messageId}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.replace(/\n/g, '\r\n')}\r\n`,
    );
  }
  const store = (raw: Buffer) => intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });
  const nextId = () => `<reused-${++n}.${Date.now()}@script.shop.example>`;

  it('processes a different mail under a known Message-ID as a new message, and says so in the reply', async () => {
    const id = nextId();
    const first = await store(mail('Amount: 10\nReference: MID-A', id));
    await intake.idle();
    const second = await store(mail('Amount: 25\nReference: MID-B', id));
    await intake.idle();
    assert.equal(second.duplicate, false, 'not taken for a redelivery');
    assert.notEqual(second.id, first.id);
    assert.equal((await Order.findOne({ reference: 'MID-A' }).lean())?.amountMinor, 1000);
    assert.equal((await Order.findOne({ reference: 'MID-B' }).lean())?.amountMinor, 2500);
    // The first message needs no reply (its pay-link mail answers it); the second's reply explains.
    assert.equal(await Outbox.countDocuments({ dedupeKey: `intake-reply:${first.id}` }), 0);
    const reply = await Outbox.findOne({ dedupeKey: `intake-reply:${second.id}` }).lean();
    assert.ok(reply, 'the merchant is told');
    const data = reply.data as { created: Array<{ reference: string }>; notices: Array<{ code: string; value?: string }> };
    assert.deepEqual(data.created.map((c) => c.reference), ['MID-B']);
    assert.deepEqual(data.notices.map((p) => [p.code, p.value]), [['INTAKE_MESSAGE_ID_REUSED', id]]);
    // The reply reads as a sentence in the merchant's language, naming the Message-ID.
    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    const rendered = await renderer.render({ template: 'intake-reply', locale: 'en', data: reply.data as Record<string, unknown> });
    assert.match(rendered.text, /Message-ID/);
    assert.match(rendered.text, /re-used|reused/i);
    assert.ok(rendered.text.includes(id));
  });

  it('keeps the same mail delivered again as one message, even through another relay (new Received lines)', async () => {
    const id = nextId();
    const raw = mail('Amount: 11\nReference: MID-C', id);
    const first = await store(raw);
    await intake.idle();
    const again = await store(raw);
    const relayed = await store(mail('Amount: 11\nReference: MID-C', id, 'Received: from mx2.shop.example by mx.paymail.test; Mon, 1 Jan 2024 10:00:00 +0000\r\n'));
    await intake.idle();
    assert.deepEqual(again, { id: first.id, duplicate: true });
    assert.deepEqual(relayed, { id: first.id, duplicate: true });
    assert.equal(await Order.countDocuments({ reference: 'MID-C' }), 1);
    assert.equal(await InboundMessage.countDocuments({ messageId: id }), 1);
  });

  it('keeps a re-used Message-ID’s second mail delivered twice as one message, and a third body as another', async () => {
    const id = nextId();
    await store(mail('Amount: 1\nReference: MID-D1', id));
    const b1 = await store(mail('Amount: 2\nReference: MID-D2', id));
    const b2 = await store(mail('Amount: 2\nReference: MID-D2', id));
    const c = await store(mail('Amount: 3\nReference: MID-D3', id));
    await intake.idle();
    assert.deepEqual(b2, { id: b1.id, duplicate: true });
    assert.equal(c.duplicate, false);
    assert.equal(await InboundMessage.countDocuments({ messageId: id }), 3);
    for (const ref of ['MID-D1', 'MID-D2', 'MID-D3']) assert.equal(await Order.countDocuments({ reference: ref }), 1, ref);
  });

  it('recognises a redelivery of a message stored before bodies were hashed', async () => {
    const id = nextId();
    const raw = mail('Amount: 4\nReference: MID-E', id);
    const first = await store(raw);
    await intake.idle();
    // As stored by an earlier version: no body hash on the document.
    await InboundMessage.collection.updateOne({ _id: new mongoose.Types.ObjectId(first.id) }, { $unset: { bodyHash: 1 } });
    const again = await store(raw);
    assert.deepEqual(again, { id: first.id, duplicate: true });
    assert.equal(await Order.countDocuments({ reference: 'MID-E' }), 1);
  });
});
