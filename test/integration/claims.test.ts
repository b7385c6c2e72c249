// Once-only claims against the real database: the referee for everything that must happen once
// (FerretDB's conditional updates are not atomic, inserts under a unique _id are).
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { Claim, claimLease, claimOnce } from '../../src/db/claims.ts';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

describe('claims', function () {
  this.timeout(60_000);
  const db = useTestDatabase();

  it('lets exactly one of many racing clients (separate connections) win each claim', async () => {
    const clients = await Promise.all([1, 2, 3, 4, 5, 6].map(() => new MongoClient(db.uri()).connect()));
    try {
      for (let round = 0; round < 20; round++) {
        const results = await Promise.allSettled(
          clients.map((c, i) => c.db().collection('claims').insertOne({ _id: `race:${round}` as never, at: new Date(), owner: String(i) })),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}`);
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    const wins = await Promise.all([1, 2, 3, 4].map(() => claimOnce('once:x')));
    assert.deepEqual(wins.filter(Boolean), [true]);
  });

  it('lets a lease be taken over once after it expired, by exactly one caller', async () => {
    const t0 = new Date('2026-11-23T10:00:00Z');
    const at = (ms: number) => new Date(t0.getTime() + ms);
    assert.equal(await claimLease('lease:a', 60_000, {}, t0), true);
    assert.equal(await claimLease('lease:a', 60_000, {}, at(30_000)), false, 'held');
    const takeovers = await Promise.all([1, 2, 3, 4].map(() => claimLease('lease:a', 60_000, {}, at(61_000))));
    assert.deepEqual(takeovers.filter(Boolean), [true], 'one takeover');
    assert.ok(await Claim.exists({ _id: 'lease:a:g1' }));
    assert.equal(await claimLease('lease:a', 60_000, {}, at(90_000)), false, 'the new holder has it');
    assert.equal(await claimLease('lease:a', 60_000, {}, at(122_000)), true, 'and loses it after its own lease');
    assert.ok(await Claim.exists({ _id: 'lease:a:g2' }));
  });

  it('processes an inbound message whose earlier claim was won but never recorded (holder died)', async () => {
    const merchants = createMerchantService({ repos, mailDomain: 'paymail.test' });
    const m = await merchants.create({ name: 'Hotel', email: 'desk@hotel.example' });
    const merchant = (await Merchant.findById(m.id).lean())!;
    const raw = Buffer.from(
      'From: desk@hotel.example\r\nTo: x@paymail.test\r\nSubject: Booking\r\nMessage-ID: <stuck-1@hotel.example>\r\n\r\nAmount: 12.50\r\nReference: STUCK-1\r\n',
    );
    const msg = await InboundMessage.create({
      merchantId: merchant._id, door: 'submission', messageKey: '<stuck-1@hotel.example>', raw, size: raw.length,
      status: 'received', receivedAt: new Date(Date.now() - 10 * 60_000),
    });
    // The claim of attempt 0 was inserted ten minutes ago by a process that then died.
    await Claim.create({ _id: `inbound:${String(msg._id)}:0`, at: new Date(Date.now() - 10 * 60_000), applied: false });
    const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: [{ kid: 'k1', secret: 'x'.repeat(32) }] });
    const intake = createIntakeService({ repos, orders, mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, logger: createLogger('silent'), leaseMs: 5 * 60_000 });
    try {
      // A new runner (as after a restart): its start-up reconcile gives the message a due entry,
      // then it takes over the dead holder's claim.
      await intake.idle();
      const after = (await InboundMessage.findById(msg._id).lean())!;
      assert.equal(after.status, 'processed');
      assert.equal(await Order.countDocuments({ reference: 'STUCK-1' }), 1);
    } finally {
      await intake.close();
    }
  });
});
