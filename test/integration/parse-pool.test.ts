// The MIME parse pool: real worker threads running mailparser. Same results as parsing on the main
// thread; a slow message times out and its worker is replaced; a worker past its memory limit dies
// and is replaced; the queue is bounded; intake gives up at once on a message the parser refuses.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createParsePool, type ParsePool } from '../../src/mail/parse-pool.ts';
import { MAX_BODY_CHARS, parseInboundMail } from '../../src/mail/parse-worker.ts';
import { createIntakeService, intakeBackoff } from '../../src/services/intake.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const FIXTURES = new URL('../fixtures/order-mail/', import.meta.url);

function textMail(body: string, extra = ''): Buffer {
  return Buffer.from(`From: a@shop.example\r\nSubject: big\r\nMessage-ID: <${Math.random()}@t>\r\n${extra}Content-Type: text/plain; charset=utf-8\r\n\r\n${body}`);
}
const TEN_MB = textMail('Amount: 10\r\n' + 'lorem ipsum dolor sit amet\r\n'.repeat(380_000));
/** mailparser refuses more than its maximum of MIME nodes: a deterministic parse failure. */
const TOO_MANY_PARTS = Buffer.from(
  'Subject: parts\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' + '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n'.repeat(3000) + '--b--\r\n',
);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isAppError(e, code) || assert.fail(`expected ${code}, got ${String((e as { code?: string }).code ?? e)}`));
}

describe('mail parse pool', function () {
  this.timeout(60_000);
  const pools: ParsePool[] = [];
  const pool = (opts: Parameters<typeof createParsePool>[0] = {}) => {
    const p = createParsePool(opts);
    pools.push(p);
    return p;
  };
  after(() => Promise.all(pools.map((p) => p.close())));

  it('gives the same result as parsing on the main thread, for every fixture', async () => {
    const p = pool();
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.eml'));
    assert.ok(files.length >= 10);
    for (const f of files) {
      const raw = await readFile(new URL(f, FIXTURES));
      assert.deepEqual(await p.parse(raw), await parseInboundMail(raw), f);
    }
    const withAttachment = await p.parse(await readFile(new URL('forwarded-rfc822.eml', FIXTURES)));
    assert.ok(withAttachment.attachments.length > 0);
    for (const a of withAttachment.attachments) {
      assert.ok(Buffer.isBuffer(a.content), 'attachment bytes come back as a Buffer');
      assert.equal(a.content.length, a.size);
    }
  });

  it('parses a 10 MB body without stalling the main thread, and cuts the body for the label parser', async () => {
    const p = pool();
    await p.parse(textMail('warm-up'));
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const mail = await p.parse(TEN_MB);
    h.disable();
    assert.equal(mail.bodyTruncated, true);
    assert.equal(mail.text?.length, MAX_BODY_CHARS);
    assert.match(mail.text ?? '', /^Amount: 10\n/);
    // Parsing it here takes ~400 ms; in the pool the loop only sees the copy of the result.
    assert.ok(h.max / 1e6 < 150, `longest stall ${(h.max / 1e6).toFixed(1)} ms`);
    assert.equal((await p.parse(textMail('short'))).bodyTruncated, false);
  });

  const failures: Array<{ name: string; opts: Parameters<typeof createParsePool>[0]; raw: Buffer; code: string; counter: 'timeouts' | 'crashes' | 'failed' }> = [
    { name: 'over its deadline: MAIL_PARSE_TIMEOUT', opts: { size: 1, timeoutMs: 100 }, raw: TEN_MB, code: 'MAIL_PARSE_TIMEOUT', counter: 'timeouts' },
    { name: 'past its memory limit: MAIL_PARSE_CRASHED', opts: { size: 1, maxHeapMb: 16 }, raw: TEN_MB, code: 'MAIL_PARSE_CRASHED', counter: 'crashes' },
    { name: 'refused by the parser: MAIL_PARSE_FAILED', opts: { size: 1 }, raw: TOO_MANY_PARTS, code: 'MAIL_PARSE_FAILED', counter: 'failed' },
  ];
  for (const c of failures) {
    it(`fails a message ${c.name}, and the next one is parsed`, async () => {
      const p = pool(c.opts);
      await p.parse(textMail('warm-up'));
      await rejectsWith(p.parse(c.raw), c.code);
      assert.equal(p.stats()[c.counter], 1);
      const next = await p.parse(textMail('Amount: 5'));
      assert.equal(next.text, 'Amount: 5');
      assert.equal(p.stats().workers, 1);
    });
  }

  it('refuses at once when the queue is full, and fails queued work on close', async () => {
    const p = pool({ size: 1, maxQueue: 1 });
    const running = rejectsWith(p.parse(TEN_MB), 'MAIL_PARSE_CLOSED');
    const queued = rejectsWith(p.parse(textMail('queued')), 'MAIL_PARSE_CLOSED');
    await rejectsWith(p.parse(textMail('one too many')), 'MAIL_PARSE_BUSY');
    assert.equal(p.stats().refused, 1);
    await p.close();
    await running;
    await queued;
    await rejectsWith(p.parse(textMail('late')), 'MAIL_PARSE_CLOSED');
  });

  describe('in intake', () => {
    useTestDatabase();
    const p = createParsePool({ size: 1 });
    pools.push(p);
    const intake = createIntakeService({ repos,
      orders: createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 'k'.repeat(32) }] }),
      mailDomain: 'paymail.test',
      maxLinkLifetimeDays: 60,
      logger: createLogger('silent'),
      parseMail: (raw) => p.parse(raw),
    });
    let merchant: MerchantDoc;
    before(async () => {
      const created = await createMerchantService({ repos, mailDomain: 'paymail.test' }).create({ name: 'Pool shop', email: 'owner@pool.example' });
      merchant = (await Merchant.findById(created.id).lean<MerchantDoc>())!;
    });
    after(() => intake.close());
    const store = (raw: Buffer) => intake.store({ merchantId: merchant._id, door: 'submission', raw, envelope: { rcptTo: [] } });

    it('processes an order mail through the pool', async () => {
      const stored = await store(textMail('Amount: 12,50\r\nReference: POOL-1'));
      await intake.idle();
      const doc = await InboundMessage.findById(stored.id).lean();
      assert.equal(doc?.status, 'processed');
      assert.equal(doc?.result?.orderIds?.length, 1);
    });

    it('retries a message whose attached message meets a parser that is unavailable (not "amount missing")', async () => {
      const fixture = await readFile(new URL('forwarded-rfc822.eml', FIXTURES));
      const down = createParsePool({ size: 1 });
      await down.close();
      let broken = true;
      let clock = new Date();
      // The outer message parses; its attached message meets a shut-down pool (MAIL_PARSE_CLOSED),
      // as at a shutdown or with every worker busy.
      const flaky = createIntakeService({ repos,
        orders: createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: 'paymail.test', maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 'k'.repeat(32) }] }),
        mailDomain: 'paymail.test',
        maxLinkLifetimeDays: 60,
        logger: createLogger('silent'),
        now: () => clock,
        parseMail: (raw) => (broken && !raw.equals(fixture) ? down.parse(raw) : p.parse(raw)),
      });
      try {
        const stored = await flaky.store({ merchantId: merchant._id, door: 'submission', raw: fixture, envelope: { rcptTo: [] } });
        await flaky.idle();
        let doc = await InboundMessage.findById(stored.id).lean();
        assert.equal(doc?.status, 'received', 'released for a retry, not processed');
        assert.match(doc?.lastError ?? '', /shut down/);
        assert.equal(await Outbox.countDocuments({ template: 'intake-reply' }), 0, 'the merchant is not told "amount missing"');

        broken = false;
        assert.equal((await flaky.process(stored.id)).status, 'skipped', 'not before its back-off is over');
        clock = new Date(clock.getTime() + intakeBackoff(1));
        assert.equal(await flaky.runOnce(), 1);
        doc = await InboundMessage.findById(stored.id).lean();
        assert.equal(doc?.status, 'processed');
        assert.equal(doc?.result?.orderIds?.length, 1);
        assert.equal((await Order.findById(doc?.result?.orderIds?.[0]).lean())?.reference, 'FW-RFC-1');
      } finally {
        await flaky.close();
      }
    });

    it('marks a message the parser refuses as failed at the first attempt, with the reason', async () => {
      const stored = await store(TOO_MANY_PARTS);
      await intake.idle();
      const doc = await InboundMessage.findById(stored.id).lean();
      assert.equal(doc?.status, 'failed');
      assert.equal(doc?.attempts, 1);
      assert.match(doc?.lastError ?? '', /could not be parsed/);
    });
  });
});
