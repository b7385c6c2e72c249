// Fault 4: two paymail processes on one database. Both take order mails (SMTP) and serve the
// checkout (HTTP); orders are paid through either, two of them by both at the same instant. Both
// run the outbox, webhook and recap workers. Promise: no mail (pay-link, receipt, recap) and no
// webhook is sent twice — counted at a real relay and a real webhook receiver on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { runCli, startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { createMerchant, sendWithRetry, startFaultRelay, submissionClient, tally, waitUntil, type FaultMerchant, type FaultRelay, type SubmissionClient } from './fault-kit.ts';

const MAILS = 12;
const PAID = 6;
/** Orders paid by both instances at the same instant. */
const RACED = 2;

/** Posts the checkout form as a browser does, with the CSRF cookie and token of the page it read. */
async function pay(url: string): Promise<Response> {
  const page = await fetch(url);
  assert.equal(page.status, 200, `checkout page ${url}`);
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
  const form = { _csrf: token, number: '4242 4242 4242 4242', expiry: '12/30', cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(form).toString(),
  });
}

describe('fault 4: two paymail instances on one database', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let relay: FaultRelay;
  let dataDir: string;
  let merchant: FaultMerchant;
  const apps: PaymailProcess[] = [];
  const clients: SubmissionClient[] = [];
  const bases: string[] = [];
  let hooks: http.Server;
  const hookBodies: Array<{ id: string; type: string; orderId?: string }> = [];
  let env: Record<string, string>;

  before(async function () {
    this.timeout(120_000);
    relay = await startFaultRelay();
    hooks = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const e = JSON.parse(body) as { id: string; type: string; data?: { order?: { id?: string }; orderId?: string } };
        hookBodies.push({ id: e.id, type: e.type, ...(e.data?.order?.id ?? e.data?.orderId ? { orderId: e.data?.order?.id ?? e.data?.orderId } : {}) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', () => r()));
    // One DATA_DIR: the second instance uses the link and receipt keys the first one generated.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-fault4-'));
    env = {
      MONGODB_URI: db.uri(),
      DATA_DIR: dataDir,
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      OUTBOUND_SMTP_URL: relay.url,
      MAIL_DOMAIN: 'paymail.test',
      // The webhook receiver listens on 127.0.0.1.
      WEBHOOK_ALLOW_PRIVATE: 'true',
    };
    merchant = await createMerchant(env, 'Fault Four Shop', 'desk@fault4.example');
    // Webhooks to our receiver; recaps due for the days since the merchant "existed" (3 days ago).
    await Merchant.collection.updateOne(
      { _id: merchant.id as never },
      {
        $set: {
          webhookUrl: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks`,
          timezone: 'UTC',
          recapHour: 0,
          createdAt: new Date(Date.now() - 3 * 86_400_000),
        },
      },
    );
    for (let k = 0; k < 2; k++) {
      const port = await freePort();
      bases.push(`http://127.0.0.1:${port}`);
      apps.push(await startPaymail({ ...env, HTTP_PORT: String(port), PUBLIC_URL: bases[k]! }));
      clients.push(submissionClient(apps[k]!.ports.submission, merchant, 2));
    }
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const a of apps) await a.stop('SIGKILL');
    await relay?.close();
    await new Promise<void>((r) => (hooks ? hooks.close(() => r()) : r()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('both serve SMTP and HTTP; no mail, receipt, webhook or recap goes out twice', async () => {
    const started = Date.now();
    const run = started.toString(36);
    for (const base of bases) assert.equal((await fetch(`${base}/healthz`)).status, 200, `${base}/healthz`);

    // Order mails alternate between the two submission doors; each must be answered 250.
    const outcomes = await Promise.all(
      Array.from({ length: MAILS }, (_, i) =>
        sendWithRetry(() => clients[i % 2]!, merchant, {
          messageId: `<two-${i}.${run}@faults.example>`,
          subject: `Two ${i}`,
          text: `Amount: ${50 + i},00 €\nDescription: two #${i}\n`,
        }),
      ),
    );
    assert.deepEqual(outcomes.map((o) => o.final), outcomes.map(() => 250));

    const orders = (await waitUntil(
      async () => {
        const os = await Order.find({ merchantId: merchant.id }).lean<Array<{ _id: string; description?: string; publicId: string }>>();
        return os.length >= MAILS ? os : undefined;
      },
      60_000,
      () => 'orders not all created',
    ))!;
    assert.equal(orders.length, MAILS, 'one order per mail');
    const linkOf = async (orderId: string) => {
      const m = await waitUntil(async () => Outbox.findOne({ dedupeKey: `paylink:${orderId}`, status: 'sent' }).lean<{ messageId: string }>(), 60_000, () => `pay-link of ${orderId} not sent`);
      const raw = relay.accepted.find((a) => a.messageId === m!.messageId);
      assert.ok(raw, `pay-link mail of ${orderId} reached the relay`);
      const order = await Order.findById(orderId).lean<{ publicId: string }>();
      // The signed link query is in the order's pay-link mail data.
      const doc = await Outbox.findOne({ dedupeKey: `paylink:${orderId}` }).lean<{ data?: { link?: string } }>();
      const link = doc?.data?.link ?? '';
      assert.ok(link.includes(`/pay/${order!.publicId}`), `link in the mail data of ${orderId}`);
      return link;
    };

    // Pay through either instance (the link's origin swapped), the first RACED through both at once.
    const payAnswers: number[] = [];
    for (let k = 0; k < PAID; k++) {
      const link = new URL(await linkOf(String(orders[k]!._id)));
      const via = (base: string) => `${base}${link.pathname}${link.search}`;
      if (k < RACED) {
        const both = await Promise.all(bases.map((b) => pay(via(b))));
        payAnswers.push(...both.map((r) => r.status));
        assert.ok(both.some((r) => r.status === 303), `one of the raced payments succeeds: ${both.map((r) => r.status).join(', ')}`);
      } else {
        const r = await pay(via(bases[k % 2]!));
        payAnswers.push(r.status);
        assert.equal(r.status, 303);
      }
    }
    const paidIds = orders.slice(0, PAID).map((o) => String(o._id));

    // The recap job of both instances has raced for the days since the merchant existed; the CLI's
    // backfill of yesterday finds it sent.
    const cli = await runCli(['recap', 'send', '--merchant', merchant.id], env);
    assert.equal(cli.code, 0, cli.stderr);

    // Everything queued gets sent: pay-links, receipts, recaps; and every webhook delivered.
    const outbox = async () => Outbox.find({}, { messageId: 1, status: 1, template: 1, dedupeKey: 1, orderId: 1 }).lean<Array<{ messageId: string; status: string; template: string; dedupeKey: string; orderId?: string }>>();
    await waitUntil(
      async () => {
        const all = await outbox();
        const receipts = all.filter((m) => m.template.startsWith('receipt-')).length;
        const hooksDone = (await WebhookDelivery.countDocuments({ status: 'delivered' })) >= PAID;
        return receipts >= 2 * PAID && all.some((m) => m.template === 'daily-recap') && all.every((m) => m.status === 'sent') && hooksDone;
      },
      90_000,
      async () => `outbox ${JSON.stringify(tally((await outbox()).map((m) => `${m.template}:${m.status}`)))}, webhooks delivered ${await WebhookDelivery.countDocuments({ status: 'delivered' })}`,
      500,
    );
    // Let a second sender, if any, show itself.
    await new Promise((r) => setTimeout(r, 3_000));

    const all = await outbox();
    const counts = relay.counts();
    assert.deepEqual(all.filter((m) => counts.get(m.messageId) !== 1).map((m) => `${m.dedupeKey} ×${counts.get(m.messageId) ?? 0}`), [], 'every mail arrives exactly once');
    assert.equal(relay.accepted.length, all.length, 'nothing else arrived');
    const perTemplate = tally(all.map((m) => m.template));
    assert.equal(perTemplate.paylink, MAILS);
    for (const t of ['receipt-customer', 'receipt-merchant']) {
      assert.deepEqual(tally(all.filter((m) => m.template === t).map((m) => m.orderId!)), Object.fromEntries(paidIds.map((id) => [id, 1])), `one ${t} per paid order`);
    }
    const recaps = all.filter((m) => m.template === 'daily-recap').map((m) => m.dedupeKey);
    assert.equal(new Set(recaps).size, recaps.length);
    assert.ok(recaps.length >= 1 && recaps.length <= 4, `a recap per past day: ${recaps.join(', ')}`);

    assert.deepEqual(Object.entries(tally(hookBodies.map((h) => h.id))).filter(([, n]) => n !== 1), [], 'each webhook event delivered once');
    const succeeded = hookBodies.filter((h) => h.type === 'payment.succeeded');
    assert.equal(succeeded.length, PAID, `one payment.succeeded per paid order: ${JSON.stringify(hookBodies)}`);
    assert.equal((await Order.countDocuments({ merchantId: merchant.id, status: 'paid' })), PAID);

    console.log(
      `      fault 4: 2 instances, ${MAILS} order mails (half per door), ${PAID} paid (${RACED} raced on both, answers ${payAnswers.join(',')}); ` +
        `relay got ${relay.accepted.length} mails ${JSON.stringify(perTemplate)}, each Message-ID once; webhooks ${JSON.stringify(tally(hookBodies.map((h) => h.type)))}, each id once; ` +
        `recap CLI: ${cli.stdout.trim()}; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
