// Which addresses a webhook may go to: public unicast only; loopback, private, link-local,
// unique-local, multicast, unspecified and the other special ranges are refused, also when they
// hide inside an IPv6 form (mapped, NAT64, 6to4).
import assert from 'node:assert/strict';
import { isAppError } from '../../src/domain/errors.ts';
import { checkWebhookTarget, nonPublicRange } from '../../src/services/webhook-target.ts';

describe('webhook targets', () => {
  const cases: Array<[string, string | undefined]> = [
    ['93.184.215.14', undefined],
    ['2606:2800:21f:cb07:6820:80da:af6b:8b2c', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['224.0.0.251', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['64:ff9b::a9fe:a9fe', 'linkLocal'],
    ['2002:c0a8:0101::1', 'private'],
    ['::ffff:93.184.215.14', undefined],
  ];
  for (const [address, range] of cases) {
    it(`${address} → ${range ?? 'public'}`, () => assert.equal(nonPublicRange(address), range));
  }

  it('refuses a name when any of its addresses is not public, and says which and why', async () => {
    const resolve = async () => [{ address: '93.184.215.14', family: 4 as const }, { address: '10.9.8.7', family: 4 as const }];
    await assert.rejects(checkWebhookTarget('https://hooks.example.com/x', { allowPrivate: false, resolve }), (e) => {
      assert.ok(isAppError(e, 'WEBHOOK_TARGET_REFUSED'));
      assert.equal(e.message, 'hooks.example.com resolves to 10.9.8.7, which is a private network address (RFC 1918); webhooks go only to public Internet addresses');
      return true;
    });
  });

  it('returns the checked addresses, and allows private ones when the operator opts in', async () => {
    const resolve = async () => [{ address: '93.184.215.14', family: 4 as const }];
    assert.deepEqual(await checkWebhookTarget('https://hooks.example.com/x', { allowPrivate: false, resolve }), [{ address: '93.184.215.14', family: 4 }]);
    assert.deepEqual(await checkWebhookTarget('http://127.0.0.1:9/x', { allowPrivate: true }), [{ address: '127.0.0.1', family: 4 }]);
  });
});
