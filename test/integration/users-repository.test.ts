// Back-office users against the real database: a merchant keeps at least one admin even when two
// admins remove or demote each other at the same moment (each checked the other was not the last
// admin before either write, so a check before the write alone ends with no admin at all).
import assert from 'node:assert/strict';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { createMerchantAdminService } from '../../src/services/merchant-admin.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';

describe('users repository', function () {
  this.timeout(60_000);
  useTestDatabase();

  const merchants = createMerchantService({ repos, mailDomain: 'paymail.test' });
  const admin = createMerchantAdminService({ repos, maxLinkLifetimeDays: 60 });

  /** A merchant with exactly two admins, a and b. */
  async function twoAdmins(n: number) {
    const m = await merchants.create({ name: `Shop ${n}`, email: `a${n}@admins.example` });
    const a = (await MerchantUser.findOne({ merchantId: m.id }).lean())!;
    const b = await MerchantUser.create({ merchantId: m.id, email: `b${n}@admins.example`, passwordHash: 'x', role: 'admin' });
    return { merchant: { _id: m.id }, a: String(a._id), b: String(b._id) };
  }

  const refusedAsLastAdmin = (r: PromiseSettledResult<unknown>) => r.status === 'rejected' && isAppError(r.reason, 'USER_LAST_ADMIN');

  const cases: Array<[string, (s: Awaited<ReturnType<typeof twoAdmins>>) => Array<Promise<unknown>>]> = [
    ['remove each other', ({ merchant, a, b }) => [admin.removeUser(merchant, a, b), admin.removeUser(merchant, b, a)]],
    ['demote each other', ({ merchant, a, b }) => [admin.changeRole(merchant, a, b, 'viewer'), admin.changeRole(merchant, b, a, 'viewer')]],
    ['one removes, the other demotes', ({ merchant, a, b }) => [admin.removeUser(merchant, a, b), admin.changeRole(merchant, b, a, 'operator')]],
  ];
  let n = 0;
  for (const [name, race] of cases) {
    it(`two admins who ${name} at once leave one admin`, async () => {
      for (let round = 0; round < 4; round++) {
        const s = await twoAdmins(++n);
        const results = await Promise.allSettled(race(s));
        for (const r of results) assert.ok(r.status === 'fulfilled' || refusedAsLastAdmin(r), `round ${round}: ${r.status === 'rejected' ? r.reason : ''}`);
        assert.ok((await MerchantUser.countDocuments({ merchantId: s.merchant._id, role: 'admin' })) >= 1, `round ${round}: no admin left`);
        assert.ok(results.some(refusedAsLastAdmin), `round ${round}: one of the two is refused`);
      }
    });
  }
});
