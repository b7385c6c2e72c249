import assert from 'node:assert/strict';
import { type AuthorizeRequest } from '../../src/domain/acquirer.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';

function request(number: string): AuthorizeRequest {
  return {
    orderId: 'ord_test',
    amountMinor: 12990,
    currency: 'EUR',
    card: { number, cvc: number.length === 15 ? '1234' : '123', expMonth: 12, expYear: 2099, holder: 'Anna Rossi' },
  };
}

describe('sandbox acquirer', () => {
  const acquirer = createSandboxAcquirer();
  const cases: Array<[string, string, string | undefined]> = [
    ['4242424242424242', 'approved', undefined],
    ['5555555555554444', 'approved', undefined],
    ['378282246310005', 'approved', undefined],
    ['4000000000000002', 'declined', 'DECLINED'],
    ['4000000000009995', 'declined', 'INSUFFICIENT_FUNDS'],
    ['4000000000009987', 'declined', 'LOST_OR_STOLEN'],
    ['4000000000009979', 'declined', 'OVER_LIMIT'],
    ['4000000000003220', 'challenge', undefined],
    ['4000000000000119', 'error', 'ACQUIRER_UNAVAILABLE'],
    ['4012888888881881', 'approved', undefined],
    ['6011111111111117', 'approved', undefined],
  ];
  for (const [number, outcome, code] of cases) {
    it(`${number} → ${outcome}${code ? ` (${code})` : ''}`, async () => {
      const r = await acquirer.authorize(request(number));
      assert.equal(r.outcome, outcome);
      if (r.outcome === 'approved') assert.match(r.authCode, /^[0-9A-Z]{6}$/);
      if (r.outcome === 'declined' || r.outcome === 'error') assert.equal(r.code, code);
      if (r.outcome === 'challenge') assert.match(r.challengeId, /^3ds_/);
    });
  }

  describe('3-D Secure completion', () => {
    const completion = (challengeId: string, authenticated: boolean) => ({
      challengeId,
      orderId: 'ord_test',
      amountMinor: 12990,
      currency: 'EUR',
      authenticated,
    });
    async function challengeId(): Promise<string> {
      const r = await acquirer.authorize(request('4000000000003220'));
      assert.equal(r.outcome, 'challenge');
      return r.outcome === 'challenge' ? r.challengeId : '';
    }
    const cases: Array<[string, boolean, string, string | undefined]> = [
      ['passed', true, 'approved', undefined],
      ['failed', false, 'declined', 'THREE_DS_FAILED'],
    ];
    for (const [name, authenticated, outcome, code] of cases) {
      it(`${name} → ${outcome}${code ? ` (${code})` : ''}`, async () => {
        const r = await acquirer.completeChallenge(completion(await challengeId(), authenticated));
        assert.equal(r.outcome, outcome);
        if (r.outcome === 'approved') assert.match(r.authCode, /^[0-9A-Z]{6}$/);
        if (r.outcome === 'declined') assert.equal(r.code, code);
      });
    }
    it('gives unguessable challenge ids', async () => {
      const ids = new Set(await Promise.all(Array.from({ length: 20 }, challengeId)));
      assert.equal(ids.size, 20);
      for (const id of ids) assert.match(id, /^3ds_[\w-]{16}$/);
    });
    it('refuses a challenge id it did not issue', async () => {
      const r = await acquirer.completeChallenge(completion('made-up', true));
      assert.equal(r.outcome, 'error');
    });
  });

  it('gives a different authorisation code each time', async () => {
    const codes = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await acquirer.authorize(request('4242424242424242'));
      if (r.outcome === 'approved') codes.add(r.authCode);
    }
    assert.ok(codes.size >= 19);
  });

  it('records voided authorisations', async () => {
    const r = await acquirer.authorize(request('4242424242424242'));
    assert.equal(r.outcome, 'approved');
    if (r.outcome !== 'approved') return;
    await acquirer.void(r.authCode);
    assert.ok(acquirer.voided.has(r.authCode));
  });
});
