// Order ids derived from the order's source (src/services/order.service.ts): the same source finds
// its order by primary key, a link-key rotation still finds it (through the unique index), and
// the checkout opens orders by _id, including orders stored before ids were derived.
import assert from 'node:assert/strict';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { payLinkUrl, type LinkKey } from '../../src/domain/pay-link.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const KEY_A: LinkKey = { kid: 'a', secret: 'order-ids-test-secret-a-order-ids-test-secret-a' };
const KEY_B: LinkKey = { kid: 'b', secret: 'order-ids-test-secret-b-order-ids-test-secret-b' };
const MAIL_DOMAIN = 'paymail.test';
const BASE = 'http://127.0.0.1:9';
const draft = (reference: string) => ({ amountMinor: 4200, currency: 'EUR', reference });

describe('order ids derived from the source', function () {
  this.timeout(20_000);
  useTestDatabase();
  let m1: MerchantDoc;
  let m2: MerchantDoc;
  const service = (keys: LinkKey[]) => createOrderService({ repos, publicUrl: BASE, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: keys });

  before(async () => {
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const a = await merchants.create({ name: 'Albergo Uno', email: 'uno@albergo.example', timezone: 'Europe/Rome' });
    const b = await merchants.create({ name: 'Albergo Due', email: 'due@albergo.example', timezone: 'Europe/Rome' });
    m1 = (await Merchant.findById(a.id).lean<MerchantDoc>())!;
    m2 = (await Merchant.findById(b.id).lean<MerchantDoc>())!;
  });

  it('gives the order the _id ord_<publicId>, an unguessable 21-character id, and finds it again by source', async () => {
    const orders = service([KEY_A]);
    const first = await orders.create(m1, draft('ID-1'), { key: 'test:id-1' });
    assert.equal(first.created, true);
    assert.match(first.order.publicId, /^[A-Za-z0-9_-]{21}$/);
    assert.equal(first.order._id, `ord_${first.order.publicId}`);
    const again = await orders.create(m1, draft('ID-1'), { key: 'test:id-1' });
    assert.equal(again.created, false);
    assert.equal(again.duplicateOf, 'source');
    assert.equal(again.order._id, first.order._id);
    assert.equal(await Order.countDocuments({ merchantId: m1._id, sourceKey: 'test:id-1' }), 1);
  });

  it('keeps merchants apart and depends on the link key', async () => {
    const a = await service([KEY_A]).create(m1, draft('ID-2'), { key: 'test:shared' });
    const b = await service([KEY_A]).create(m2, draft('ID-2'), { key: 'test:shared' });
    assert.equal(b.created, true, 'same source key, other merchant: its own order');
    assert.notEqual(a.order._id, b.order._id);
    const c = await service([KEY_B]).create(m1, draft('ID-3'), { key: 'test:other-key' });
    const d = await service([KEY_A]).create(m1, draft('ID-4'), { key: 'test:other-key-2' });
    assert.notEqual(c.order.publicId.slice(0, 8), d.order.publicId.slice(0, 8));
  });

  it('still finds the order of a source after a link-key rotation (no second order)', async () => {
    const before = await service([KEY_A]).create(m1, draft('ROT-1'), { key: 'test:rotation' });
    const after = await service([KEY_B, KEY_A]).create(m1, draft('ROT-1'), { key: 'test:rotation' });
    assert.equal(after.created, false);
    assert.equal(after.duplicateOf, 'source');
    assert.equal(after.order._id, before.order._id);
    const many = await service([KEY_B, KEY_A]).createMany(m1, [{ draft: draft('ROT-1'), source: { key: 'test:rotation' } }]);
    const row = many[0]!;
    assert.ok(!('error' in row) && row.order._id === before.order._id);
    assert.equal(await Order.countDocuments({ merchantId: m1._id, sourceKey: 'test:rotation' }), 1);
  });

  it('finds batch rows created before by primary key (a batch processed again)', async () => {
    const orders = service([KEY_A]);
    const items = [1, 2, 3].map((n) => ({ draft: draft(`B-${n}`), source: { key: `test:batch:${n}` } }));
    const first = await orders.createMany(m1, items);
    const second = await orders.createMany(m1, items);
    for (const [k, r] of second.entries()) {
      assert.ok(!('error' in r));
      assert.equal(r.duplicateOf, 'source');
      assert.equal(r.order._id, (first[k] as { order: { _id: string } }).order._id);
    }
  });

  it('opens a pay-link by _id, and an order stored before ids were derived by its publicId', async () => {
    const orders = service([KEY_A]);
    const checkout = createCheckoutService({ repos, acquirer: createSandboxAcquirer(), linkKeys: [KEY_A], mailDomain: MAIL_DOMAIN, linkFor: orders.linkFor });
    const open = async (o: { publicId: string; amountMinor: number; currency: string; linkExpiresAt: number }) => {
      const url = new URL(orders.linkFor(o));
      return checkout.open(o.publicId, Object.fromEntries(url.searchParams));
    };
    const fresh = (await orders.create(m1, draft('OPEN-1'), { key: 'test:open' })).order;
    const state = await open(fresh);
    assert.equal(state.kind, 'payable');
    assert.equal('order' in state && state.order._id, fresh._id);

    const expiresAt = new Date(Date.now() + 86_400_000);
    const legacy = {
      _id: 'ord_legacyRandomId000001',
      publicId: 'legacyPublicId0000001',
      merchantId: m1._id,
      reference: 'OLD-1',
      openReference: 'OLD-1',
      sourceKey: 'test:legacy',
      amountMinor: 990,
      currency: 'EUR',
      locale: 'en',
      delivery: 'merchant' as const,
      status: 'pending' as const,
      expiresAt,
      linkExpiresAt: Math.floor(expiresAt.getTime() / 1000),
    };
    await Order.create(legacy);
    const old = await open(legacy);
    assert.equal(old.kind, 'payable');
    assert.equal('order' in old && old.order._id, legacy._id);
    // A link whose public id is nobody's stays unknown.
    const ghost = await open({ ...legacy, publicId: 'nobodysPublicId000001' });
    assert.equal(ghost.kind, 'not-found');
    assert.ok(payLinkUrl(BASE, [KEY_A], { publicId: fresh.publicId, amountMinor: 4200, currency: 'EUR', expiresAt: fresh.linkExpiresAt }));
  });
});
