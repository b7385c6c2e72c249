// Webhooks end to end against a real HTTP receiver on 127.0.0.1 and the real database: events
// from real payments, the Paymail-Signature checked by an independent verifier written here (what
// a merchant would write), retries with the same event id, bounded timeouts, giving up after
// three days, no webhook without a URL, and exactly one delivery with two workers racing.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { type OrderDoc } from '../../src/db/models/order.model.ts';
import { WebhookAttempt, WebhookDelivery, type WebhookDeliveryDoc } from '../../src/db/models/webhook.model.ts';
import { WebhookDue } from '../../src/db/due-queue.ts';
import { verifyReceiptToken } from '../../src/domain/receipt-proof.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createWebhookWorker, type WebhookWorker } from '../../src/jobs/webhook-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService, WEBHOOK_RETRY_WINDOW_MS } from '../../src/services/events.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { createReceiptProofs } from '../../src/services/receipt-proof.service.ts';
import { createReceiptKeyRing } from '../../src/services/signing-keys.ts';
import { generateKeyPairSync } from 'node:crypto';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

// ---- the merchant's side: an independent verifier (no paymail code) ----

const TOLERANCE_SEC = 300;
type Verdict = 'ok' | 'missing-signature' | 'bad-signature' | 'stale' | 'duplicate';

/**
 * What a merchant's endpoint does before trusting a webhook: parse `t=…,v1=…`, recompute
 * HMAC-SHA256(secret, `${t}.${rawBody}`) over the RAW body, compare in constant time, refuse a t
 * outside ±5 minutes (a captured request replayed later), and process each event id once (a
 * replay inside the window, or paymail retrying after a lost 2xx, is acknowledged, not redone).
 */
function verifyWebhook(header: string | undefined, rawBody: string, secret: string, nowSec: number, seen: Set<string>): Verdict {
  if (!header) return 'missing-signature';
  const parts = new Map<string, string[]>();
  for (const kv of header.split(',')) {
    const i = kv.indexOf('=');
    if (i > 0) parts.set(kv.slice(0, i).trim(), [...(parts.get(kv.slice(0, i).trim()) ?? []), kv.slice(i + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  const candidates = parts.get('v1') ?? [];
  if (!Number.isInteger(t) || candidates.length === 0) return 'missing-signature';
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex'), 'utf8');
  const match = candidates.some((c) => {
    const given = Buffer.from(c, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!match) return 'bad-signature';
  if (Math.abs(nowSec - t) > TOLERANCE_SEC) return 'stale';
  const id = (JSON.parse(rawBody) as { id: string }).id;
  if (seen.has(id)) return 'duplicate';
  seen.add(id);
  return 'ok';
}

// ---- a real HTTP receiver ----

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

function startReceiver() {
  const received: Received[] = [];
  let respond: (n: number) => number | 'hang' = () => 200;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = respond(received.length);
      if (answer === 'hang') return; // never answers: the sender's timeout must end the attempt
      res.statusCode = answer;
      res.end(answer < 300 ? 'ok' : 'nope');
    });
  });
  return {
    server,
    received,
    set: (fn: typeof respond) => (respond = fn),
    reset() {
      received.length = 0;
      respond = () => 200;
    },
    async listen() {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/paymail`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const KEYS: LinkKey[] = [{ kid: 'wh1', secret: 'webhook-test-secret-webhook-test-secret' }];
const logger = createLogger('silent');
const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');

describe('webhooks', function () {
  this.timeout(20_000);
  useTestDatabase();
  const receiver = startReceiver();
  let url: string;
  let merchant: MerchantDoc;
  let noHook: MerchantDoc;
  let clock = new Date();
  const now = () => clock;
  const events = createEventsService({ repos, now });
  const orders = createOrderService({ repos, publicUrl: 'http://127.0.0.1:9', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: KEYS });
  const ring = createReceiptKeyRing(generateKeyPairSync('ed25519').privateKey);
  const proofs = createReceiptProofs({ keys: ring, publicUrl: 'http://127.0.0.1:9' });
  let seq = 0;

  const worker = (over: Partial<Parameters<typeof createWebhookWorker>[0]> = {}): WebhookWorker =>
    // The receiver listens on 127.0.0.1: allowed here as WEBHOOK_ALLOW_PRIVATE=true allows it.
    createWebhookWorker({ repos, logger, now, timeoutMs: 2_000, backoff: () => 10_000, allowPrivateTargets: true, ...over });

  async function newOrder(m: MerchantDoc = merchant, customerEmail = 'anna@example.org'): Promise<OrderDoc> {
    seq++;
    const r = await orders.create(m, { amountMinor: 12990, currency: 'EUR', reference: `WH-${seq}`, customerEmail }, { key: `wh:${seq}` });
    return r.order;
  }
  const delivery = async (id: string) => (await WebhookDelivery.findById(id).lean<WebhookDeliveryDoc>())!;

  before(async () => {
    url = await receiver.listen();
    const ms = createMerchantService({ repos, mailDomain: 'paymail.test' });
    const a = await ms.create({ name: 'Hotel Bellavista', email: 'desk@bellavista.example', webhookUrl: url });
    const b = await ms.create({ name: 'No Hooks Shop', email: 'shop@nohooks.example' });
    merchant = (await Merchant.findById(a.id).lean<MerchantDoc>())!;
    noHook = (await Merchant.findById(b.id).lean<MerchantDoc>())!;
  });
  after(() => receiver.close());
  beforeEach(async () => {
    receiver.reset();
    clock = new Date();
    await WebhookDelivery.deleteMany({});
    await WebhookDue.deleteMany({});
  });

  it('fires payment.failed and payment.succeeded from real payments, signed and verifiable', async () => {
    const checkout = createCheckoutService({ repos,
      acquirer: createSandboxAcquirer({ latencyMs: 0 }),
      linkKeys: KEYS,
      mailDomain: 'paymail.test',
      linkFor: orders.linkFor,
      events,
      proofs,
    });
    const order = await newOrder();
    const form = (number: string) => ({ number, expiry: `09/${nextYear}`, cvc: '123', holder: 'Anna Rossi' });
    const declined = await checkout.pay({ order, merchant }, form('4000000000009995'), '127.0.0.1');
    assert.equal(declined.kind, 'refused');
    const paid = await checkout.pay({ order, merchant }, form('4242424242424242'), '127.0.0.1');
    assert.equal(paid.kind, 'paid');

    assert.equal(await worker().runOnce(), 2);
    const seen = new Set<string>();
    const bodies = receiver.received.map((r) => {
      assert.equal(verifyWebhook(r.headers['paymail-signature'] as string, r.body, merchant.webhookSecret, Math.floor(Date.now() / 1000), seen), 'ok');
      assert.equal(r.headers['content-type'], 'application/json');
      return JSON.parse(r.body) as { id: string; type: string; created: number; data: Record<string, any> };
    });
    const failed = bodies.find((b) => b.type === 'payment.failed')!;
    const succeeded = bodies.find((b) => b.type === 'payment.succeeded')!;
    assert.equal(failed.data.attempt.declineCode, 'INSUFFICIENT_FUNDS');
    assert.equal(failed.data.order.status, 'pending');
    assert.match(succeeded.id, /^evt_[\w-]{21}$/);
    assert.equal(receiver.received.find((r) => r.body.includes(succeeded.id))!.headers['paymail-event-id'], succeeded.id);
    assert.deepEqual(Object.keys(succeeded).sort(), ['created', 'data', 'id', 'type']);
    assert.equal(succeeded.data.order.id, order._id);
    assert.equal(succeeded.data.order.status, 'paid');
    assert.equal(succeeded.data.order.amountMinor, 12990);
    assert.equal(succeeded.data.order.payment.card.last4, '4242');
    // The receipt proof travels with the event and verifies with the service's public key.
    const proof = verifyReceiptToken(succeeded.data.receipt.proof, ring.lookup);
    assert.ok(proof.ok && proof.claims.receiptNumber === succeeded.data.receipt.number);
    const all = receiver.received.map((r) => r.body).join('\n');
    assert.doesNotMatch(all, /4242424242424242|4000000000009995|"bin"|clientIp|127\.0\.0\.1/, 'no card number, BIN or client address');
  });

  it('creates each event once: a repeated emit returns the same id and queues nothing more', async () => {
    const order = await newOrder();
    const first = await events.orderExpired(order, merchant);
    const again = await events.orderExpired(order, merchant);
    assert.ok(first?.created);
    assert.deepEqual(again, { id: first.id, created: false });
    assert.equal(await WebhookDelivery.countDocuments({ orderId: order._id }), 1);
  });

  it('sends nothing when the merchant has no webhook URL', async () => {
    const order = await newOrder(noHook);
    assert.equal(await events.paymentSucceeded(order, noHook), null);
    assert.equal(await events.orderCancelled(order, noHook), null);
    assert.equal(await worker().runOnce(), 0);
    assert.equal(await WebhookDelivery.countDocuments({ merchantId: noHook._id }), 0);
    assert.equal(receiver.received.length, 0);
  });

  it('retries after 500s with the same id and body, re-signed per attempt, recording every attempt', async () => {
    receiver.set((n) => (n <= 2 ? 500 : 204));
    const order = await newOrder();
    const { id } = (await events.orderCancelled(order, merchant))!;
    const w = worker();
    const start = clock.getTime();
    for (let i = 0; i < 3; i++) {
      assert.equal(await w.runOnce(), 1, `attempt ${i + 1}`);
      assert.equal(await w.runOnce(), 0, 'nothing due before the back-off has passed');
      clock = new Date(clock.getTime() + 11_000);
    }
    assert.equal(receiver.received.length, 3);
    const bodies = new Set(receiver.received.map((r) => r.body));
    assert.equal(bodies.size, 1, 'the very same body every time');
    assert.equal((JSON.parse([...bodies][0]!) as { id: string }).id, id);
    const stamps = receiver.received.map((r) => /t=(\d+)/.exec(r.headers['paymail-signature'] as string)![1]);
    assert.deepEqual(stamps, [0, 1, 2].map((i) => String(Math.floor((start + i * 11_000) / 1000))), 't is the attempt time');
    for (const [i, r] of receiver.received.entries()) {
      const verdict = verifyWebhook(r.headers['paymail-signature'] as string, r.body, merchant.webhookSecret, Number(stamps[i]), new Set());
      assert.equal(verdict, 'ok', `attempt ${i + 1} signature`);
    }
    const d = await delivery(id);
    assert.equal(d.status, 'delivered');
    assert.equal(d.attempts, 3);
    const attempts = await WebhookAttempt.find({ deliveryId: id }).sort({ attempt: 1 }).lean();
    assert.deepEqual(attempts.map((a) => [a.attempt, a.statusCode, a.ok]), [[1, 500, false], [2, 500, false], [3, 204, true]]);
    assert.ok(attempts.every((a) => a.at instanceof Date && typeof a.durationMs === 'number' && a.url === url));
  });

  it('ends a hanging attempt at the timeout, records it, and retries later', async () => {
    receiver.set((n) => (n === 1 ? 'hang' : 200));
    const order = await newOrder();
    const { id } = (await events.orderExpired(order, merchant))!;
    const w = worker({ timeoutMs: 300 });
    const t0 = Date.now();
    await w.runOnce();
    assert.ok(Date.now() - t0 < 2_000, 'bounded by the timeout');
    const [first] = await WebhookAttempt.find({ deliveryId: id }).lean();
    assert.match(first!.error!, /timeout after 300 ms/);
    assert.equal((await delivery(id)).status, 'pending');
    clock = new Date(clock.getTime() + 11_000);
    await w.runOnce();
    assert.equal((await delivery(id)).status, 'delivered');
  });

  it('records connection errors and gives up three days after the event', async () => {
    const order = await newOrder();
    // A port that was free a moment ago: nothing listens there, so the connection is refused.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: `http://127.0.0.1:${closedPort}/closed` } });
    try {
      const { id } = (await events.paymentSucceeded(order, merchant))!;
      const w = worker();
      await w.runOnce();
      let d = await delivery(id);
      assert.equal(d.status, 'pending');
      assert.match(d.lastError ?? '', /ECONNREFUSED/);
      clock = new Date(clock.getTime() + WEBHOOK_RETRY_WINDOW_MS - 5_000);
      await w.runOnce();
      d = await delivery(id);
      assert.equal(d.status, 'dead', 'the next retry would fall after the three days');
      assert.equal(await WebhookAttempt.countDocuments({ deliveryId: id }), 2);
    } finally {
      await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: url } });
    }
  });

  it('lets the merchant reject forged, replayed and stale requests (and accept the genuine one)', async () => {
    const order = await newOrder();
    await events.orderCancelled(order, merchant);
    await worker().runOnce();
    const genuine = receiver.received[0]!;
    const header = genuine.headers['paymail-signature'] as string;
    const t = Number(/t=(\d+)/.exec(header)![1]);
    const secret = merchant.webhookSecret;
    const seen = new Set<string>();
    const forgedBody = genuine.body.replace('"amountMinor":12990', '"amountMinor":1');
    assert.notEqual(forgedBody, genuine.body);
    const attackerSig = `t=${t},v1=${createHmac('sha256', 'whsec_guessed').update(`${t}.${genuine.body}`).digest('hex')}`;
    const freshT = t + 3600;
    const cases: Array<[string, string | undefined, string, number, Verdict]> = [
      ['genuine, on time', header, genuine.body, t + 2, 'ok'],
      ['the same request replayed within the window', header, genuine.body, t + 60, 'duplicate'],
      ['the same request replayed an hour later', header, genuine.body, t + 3600, 'stale'],
      ['a fresh t pasted onto the old signature', header.replace(`t=${t}`, `t=${freshT}`), genuine.body, freshT, 'bad-signature'],
      ['a changed amount', header, forgedBody, t + 2, 'bad-signature'],
      ['signed with a guessed secret', attackerSig, genuine.body, t + 2, 'bad-signature'],
      ['a truncated signature', header.slice(0, -2), genuine.body, t + 2, 'bad-signature'],
      ['no header', undefined, genuine.body, t + 2, 'missing-signature'],
    ];
    for (const [name, h, body, at, verdict] of cases) {
      assert.equal(verifyWebhook(h, body, secret, at, seen), verdict, name);
    }
  });

  it('delivers each event exactly once with two workers racing', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await events.orderExpired(await newOrder(), merchant))!.id);
    const [a, b] = [worker({ ownerId: 'A' }), worker({ ownerId: 'B' })];
    const [na, nb] = await Promise.all([a.runOnce(), b.runOnce()]);
    assert.equal(na + nb, 12);
    const got = receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id);
    assert.deepEqual([...got].sort(), [...ids].sort(), 'every event once, none twice');
    assert.equal(await WebhookDelivery.countDocuments({ status: 'delivered' }), 12);
    assert.equal(await WebhookAttempt.countDocuments({ deliveryId: { $in: ids } }), 12);
  });

  it('runs in the background: start() delivers a queued event without an explicit runOnce', async () => {
    const w = createWebhookWorker({ repos, logger, pollMs: 50, allowPrivateTargets: true });
    w.start();
    try {
      const { id } = (await events.orderExpired(await newOrder(), merchant))!;
      for (let i = 0; i < 100 && (await delivery(id)).status !== 'delivered'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await delivery(id)).status, 'delivered');
      assert.ok(w.healthy());
    } finally {
      await w.stop();
    }
  });

  describe('targets (server-side request forgery)', () => {
    const refused: Array<[string, string, RegExp]> = [
      ['loopback', 'http://127.0.0.1:{port}/hooks/paymail', /refused: 127\.0\.0\.1 is a loopback address/],
      ['IPv6 loopback', 'http://[::1]:{port}/hooks', /refused: ::1 is a loopback address/],
      ['cloud metadata (link-local)', 'http://169.254.169.254/latest/meta-data/', /refused: 169\.254\.169\.254 is a link-local address/],
      ['private network', 'https://10.1.2.3/hooks', /refused: 10\.1\.2\.3 is a private network address/],
      ['a name resolving to loopback', 'http://localhost:{port}/hooks', /refused: localhost resolves to (127\.0\.0\.1|::1), which is a loopback address/],
      ['IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.1]:{port}/hooks', /refused: ::ffff:7f00:1 is a loopback address/],
    ];
    for (const [name, template, error] of refused) {
      it(`refuses ${name} at delivery, without connecting`, async () => {
        const port = new URL(url).port;
        const target = template.replace('{port}', port);
        await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: target } });
        try {
          const { id } = (await events.orderCancelled(await newOrder(), merchant))!;
          await worker({ allowPrivateTargets: false }).runOnce();
          const d = await delivery(id);
          assert.equal(d.status, 'pending', 'retried later: the merchant may fix the URL');
          assert.match(d.lastError ?? '', error);
          assert.equal(receiver.received.length, 0, 'nothing reached the receiver');
          const attempt = await WebhookAttempt.findOne({ deliveryId: id }).lean();
          assert.match(attempt!.error!, error);
          assert.equal(attempt!.statusCode, undefined);
        } finally {
          await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: url } });
        }
      });
    }

    it('checks every address of a name: one private address among public ones is refused', async () => {
      await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: 'https://hooks.merchant.test/paymail' } });
      try {
        const { id } = (await events.orderCancelled(await newOrder(), merchant))!;
        const resolve = async () => [{ address: '93.184.215.14', family: 4 as const }, { address: '192.168.1.20', family: 4 as const }];
        await worker({ allowPrivateTargets: false, resolve }).runOnce();
        assert.match((await delivery(id)).lastError ?? '', /refused: hooks\.merchant\.test resolves to 192\.168\.1\.20, which is a private network address/);
      } finally {
        await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: url } });
      }
    });

    it('bounds a hanging name look-up by the attempt timeout', async () => {
      await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: 'https://hooks.merchant.test/paymail' } });
      try {
        const { id } = (await events.orderCancelled(await newOrder(), merchant))!;
        const t0 = Date.now();
        await worker({ timeoutMs: 300, resolve: () => new Promise(() => {}) }).runOnce();
        assert.ok(Date.now() - t0 < 2_000, 'bounded by the timeout');
        assert.match((await delivery(id)).lastError ?? '', /timeout after 300 ms/);
      } finally {
        await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: url } });
      }
    });

    it('connects to the address it checked, not to a second look-up of the name', async () => {
      // The name exists only in the test's resolver: the system resolver would not find it, so a
      // delivery proves the connection went to the checked address.
      const port = new URL(url).port;
      await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: `http://hooks.merchant.invalid:${port}/hooks/paymail` } });
      try {
        const { id } = (await events.orderCancelled(await newOrder(), merchant))!;
        let lookups = 0;
        const resolve = async () => (lookups++, [{ address: '127.0.0.1', family: 4 as const }]);
        await worker({ allowPrivateTargets: true, resolve }).runOnce();
        assert.equal((await delivery(id)).status, 'delivered');
        assert.equal(lookups, 1);
        assert.equal(receiver.received.length, 1);
        assert.equal(receiver.received[0]!.headers.host, `hooks.merchant.invalid:${port}`);
      } finally {
        await Merchant.updateOne({ _id: merchant._id }, { $set: { webhookUrl: url } });
      }
    });
  });
});
