// Which orders collect a payment (src/domain/order-plan.ts isCollecting, payableAt): pending, or
// partly paid with a part open; and what the expired page of such an order says (newLinkView).
import assert from 'node:assert/strict';
import { isCollecting, payableAt } from '../../src/domain/order-plan.ts';
import { newLinkView } from '../../src/http/checkout/renewal.routes.ts';

const now = new Date('2026-11-30T12:00:00Z');
const later = new Date(now.getTime() + 86_400_000);
const earlier = new Date(now.getTime() - 86_400_000);
const paid = { receiptNumber: 'R1', paidAt: earlier };
const plan = (openSeq: number, firstPaid: boolean) => ({
  openSeq,
  parts: [
    { seq: 1, kind: 'deposit', amountMinor: 3000, ...(firstPaid ? { payment: paid } : {}) },
    { seq: 2, kind: 'balance', amountMinor: 7000 },
  ],
});
type Case = [string, { status: string; plan?: ReturnType<typeof plan> }, boolean];
const cases: Case[] = [
  ['a pending order', { status: 'pending' }, true],
  ['a pending order with a plan (its deposit open)', { status: 'pending', plan: plan(1, false) }, true],
  ['a partly paid order with its balance open', { status: 'partially_paid', plan: plan(2, true) }, true],
  ['a partly paid order between parts', { status: 'partially_paid', plan: plan(0, true) }, false],
  ['a paid order', { status: 'paid' }, false],
  ['an expired order', { status: 'expired' }, false],
  ['a cancelled order', { status: 'cancelled' }, false],
];

describe('collecting orders', () => {
  for (const [name, o, collecting] of cases) {
    it(`${name}: ${collecting ? 'collects' : 'does not collect'}; payable only while its link lives`, () => {
      const order = { amountMinor: 10000, ...o } as Parameters<typeof payableAt>[0];
      assert.equal(isCollecting(order), collecting);
      assert.equal(payableAt({ ...order, expiresAt: later }, now), collecting);
      assert.equal(payableAt({ ...order, expiresAt: earlier }, now), false);
    });
  }

  it("the expired page says 'renewed' only for an order collecting again under a live link", () => {
    const form = () => ({ action: '/x', csrf: 't', csrfField: '_csrf' });
    const base = { amountMinor: 10000, renewals: [], customer: { email: 'c@x.test' } } as never as Parameters<typeof newLinkView>[0];
    assert.deepEqual(newLinkView({ ...base, status: 'pending', expiresAt: later }, form, now), { renewed: true });
    assert.deepEqual(newLinkView({ ...base, status: 'partially_paid', plan: plan(2, true), expiresAt: later } as never, form, now), { renewed: true });
    // Deposit paid, balance not asked yet: the old link's expiry may lie ahead, but no link was renewed.
    const between = newLinkView({ ...base, status: 'partially_paid', plan: plan(0, true), expiresAt: later } as never, form, now);
    assert.equal((between as { renewed?: boolean }).renewed, undefined);
    assert.equal((newLinkView({ ...base, status: 'expired', expiresAt: earlier }, form, now) as { action?: string }).action, '/x');
  });
});
