// The merchants repository's state transitions against the real database: each is conditional on
// the state it replaces, so two changes at once cannot silently undo one another (a read followed
// by an unconditional write would: both rotations read the same key, the last write drops the
// other's new key).
import assert from 'node:assert/strict';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { createMerchantAdminService } from '../../src/services/merchant-admin.service.ts';
import { createMerchantSuspensionService } from '../../src/services/merchant-suspension.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

describe('merchants repository', function () {
  this.timeout(60_000);
  useTestDatabase();

  const merchants = createMerchantService({ repos, mailDomain: 'paymail.test' });
  const admin = createMerchantAdminService({ repos, maxLinkLifetimeDays: 60 });
  const suspension = createMerchantSuspensionService({ repos });

  /** Every key a merchant accepts now: the current one, and the previous one in its grace period. */
  async function validSealKeys(id: string): Promise<string[]> {
    const m = (await Merchant.findById(id).lean())!;
    return [m.sealKey, m.previousSealKeyUntil && m.previousSealKeyUntil > new Date() ? m.previousSealKey : undefined].filter((k): k is string => !!k);
  }

  it('two seal-key rotations at once both hand out a key that verifies', async () => {
    const { id } = await merchants.create({ name: 'Shop', email: 'owner@shop-rotate.example' });
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([merchants.rotateSealKey(id), merchants.rotateSealKey(id)]);
      assert.notEqual(a.sealKey, b.sealKey);
      const valid = await validSealKeys(id);
      assert.ok(valid.includes(a.sealKey) && valid.includes(b.sealKey), `round ${round}: a key handed out no longer verifies`);
    }
  });

  it('two webhook-secret rotations at once both hand out a secret that still signs', async () => {
    const { id } = await merchants.create({ name: 'Hotel', email: 'desk@hotel-rotate.example' });
    const merchant = (await Merchant.findById(id).lean())!;
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([admin.rotateWebhookSecret(merchant), admin.rotateWebhookSecret(merchant)]);
      const m = (await Merchant.findById(id).lean())!;
      const signing = [m.webhookSecret, m.previousWebhookSecret];
      assert.ok(signing.includes(a.secret) && signing.includes(b.secret), `round ${round}: a secret handed out no longer signs`);
    }
  });

  it('suspending an already suspended merchant changes nothing and says so', async () => {
    const { id } = await merchants.create({ name: 'Bakery', email: 'baker@bakery-suspend.example' });
    const first = await suspension.suspend(id, 'unpaid invoice');
    assert.equal(first.changed, true);
    const again = await suspension.suspend(id, 'another reason');
    assert.equal(again.changed, false);
    assert.equal(again.status, 'suspended');
    assert.equal(again.reason, 'unpaid invoice', 'the first suspension stands');
    assert.equal(again.suspendedAt, first.suspendedAt);
    const stored = (await Merchant.findById(id).lean())!;
    assert.equal(stored.suspendedReason, 'unpaid invoice');
    assert.equal(stored.suspendedAt?.toISOString(), first.suspendedAt);
    const resumed = await suspension.resume(id);
    assert.equal(resumed.changed, true);
    assert.equal((await suspension.resume(id)).changed, false, 'resuming an active merchant changes nothing');
  });
});
