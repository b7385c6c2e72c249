import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import mongoose from 'mongoose';
import { isAppError } from '../../src/domain/errors.ts';
import { CapturedMail, Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { OutboxDue } from '../../src/db/due-queue.ts';
import { backoffDelay, createOutboxWorker, isRelayDown, type OutboxWorkerDeps } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail, type MailRequest, newMessageId } from '../../src/mail/outbox.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { paylinkRequest } from '../helpers/mail-fixtures.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const DOMAIN = 'paymail.test';
const FROM = `paymail <no-reply@${DOMAIN}>`;
const logger = createLogger('silent');

async function load(id: unknown): Promise<OutboxDoc> {
  const doc = await Outbox.findById(id).lean<OutboxDoc>();
  assert.ok(doc);
  return doc;
}

describe('outbox worker', function () {
  this.timeout(20_000);
  useTestDatabase();
  let renderer: MailRenderer;
  let relay: SmtpSink;
  /** The workers' clock runs `offset` ms ahead of real time, so tests can jump to a retry. */
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);

  function worker(over: Partial<OutboxWorkerDeps> = {}) {
    return createOutboxWorker({
      repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }),
      from: FROM,
      logger,
      now: clock,
      ...over,
    });
  }

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    relay = await startSmtpSink();
  });
  after(() => relay.close());
  beforeEach(async () => {
    await Outbox.deleteMany({});
    await OutboxDue.deleteMany({});
    relay.reset();
    offset = 0;
  });

  it('sends a due mail with its stored Message-ID, headers and inline QR, and marks it sent', async () => {
    const doc = await enqueueMail(
      paylinkRequest(1, { cc: ['boss@merchant.test'], inReplyTo: '<order-1@merchant.test>', references: ['<order-1@merchant.test>'] }),
      DOMAIN,
      repos.outbox,
    );
    assert.equal(await worker().runOnce(), 1);
    const sent = await load(doc._id);
    assert.equal(sent.status, 'sent');
    assert.ok(sent.sentAt);
    assert.equal(sent.attempts, 1);
    assert.equal(sent.leaseOwner, undefined);
    assert.equal(relay.received.length, 1);
    const mail = relay.received[0]!;
    assert.equal(mail.messageId, doc.messageId);
    assert.deepEqual(mail.to.sort(), ['boss@merchant.test', 'shop1@merchant.test']);
    assert.equal(mail.parsed.inReplyTo, '<order-1@merchant.test>');
    assert.equal(mail.parsed.replyTo?.text, 'shop1@merchant.test');
    assert.match(mail.parsed.subject ?? '', /REF-1/);
    assert.match(mail.parsed.text ?? '', /pay\/p1\?e=1&s=x/);
    const qr = mail.parsed.attachments.find((a) => a.contentType === 'image/png');
    assert.ok(qr?.cid, 'inline QR attachment');
    assert.equal(qr.contentDisposition, 'inline');
    assert.ok(String(mail.parsed.html).includes(`cid:${qr.cid}`));
  });

  it('retries a temporary rejection with back-off, keeping the Message-ID, then sends', async () => {
    relay.rejectWith((n) => (n <= 2 ? 451 : undefined));
    const doc = await enqueueMail(paylinkRequest(2), DOMAIN, repos.outbox);
    const w = worker();

    assert.equal(await w.runOnce(), 1);
    let d = await load(doc._id);
    assert.equal(d.status, 'pending');
    assert.equal(d.attempts, 1);
    assert.match(d.lastError ?? '', /451/);
    let wait = d.nextAttemptAt.getTime() - clock().getTime();
    assert.ok(wait >= 7_000 && wait <= 12_500, `first back-off ${wait} ms`);
    assert.equal(await w.runOnce(), 0, 'not due yet');

    offset = d.nextAttemptAt.getTime() - Date.now() + 1;
    assert.equal(await w.runOnce(), 1);
    d = await load(doc._id);
    assert.equal(d.status, 'pending');
    assert.equal(d.attempts, 2);
    wait = d.nextAttemptAt.getTime() - clock().getTime();
    assert.ok(wait >= 14_500 && wait <= 25_000, `second back-off ${wait} ms`);

    offset = d.nextAttemptAt.getTime() - Date.now() + 1;
    assert.equal(await w.runOnce(), 1);
    d = await load(doc._id);
    assert.equal(d.status, 'sent');
    assert.equal(d.attempts, 3);
    assert.deepEqual(relay.attempts, [doc.messageId, doc.messageId, doc.messageId]);
    assert.equal(relay.received.length, 1);
  });

  const dead: Array<[string, number | undefined, number, number]> = [
    // [case, relay answer, maxAttempts, attempts until dead]
    ['a permanent 550 rejection at once', 550, 30, 1],
    ['temporary failures after maxAttempts', 451, 3, 3],
  ];
  for (const [name, code, maxAttempts, attempts] of dead) {
    it(`gives up (dead) on ${name}`, async () => {
      relay.rejectWith(() => code);
      const doc = await enqueueMail(paylinkRequest(3), DOMAIN, repos.outbox);
      const w = worker({ maxAttempts });
      for (let i = 0; i < maxAttempts + 1; i++) {
        await w.runOnce();
        offset += 2 * 3_600_000;
      }
      const d = await load(doc._id);
      assert.equal(d.status, 'dead');
      assert.equal(d.attempts, attempts);
      assert.match(d.lastError ?? '', new RegExp(String(code)));
      assert.equal(relay.attempts.length, attempts);
    });
  }

  it('marks mail with data the renderer refuses dead without sending it', async () => {
    // enqueueMail refuses such data now (next test): this is mail stored before it did.
    const doc = (await repos.outbox.enqueue({ ...paylinkRequest(4), data: { merchantName: 'x' }, messageId: newMessageId(DOMAIN) })).mail;
    assert.equal(await worker().runOnce(), 1);
    const d = await load(doc._id);
    assert.equal(d.status, 'dead');
    assert.match(d.lastError ?? '', /MAIL_DATA_INVALID/);
    assert.equal(relay.attempts.length, 0);
  });

  it('refuses at enqueue a pay-link mail with a missing or invalid field, naming the template and field', async () => {
    const { link: _link, ...noLink } = paylinkRequest(30).data as Record<string, unknown>;
    const cases: Array<{ data: Record<string, unknown>; field: RegExp }> = [
      { data: noLink, field: /paylink mail data invalid at link:/ },
      { data: { ...paylinkRequest(31).data, amountMinor: 12.5 }, field: /paylink mail data invalid at amountMinor:/ },
      { data: { ...paylinkRequest(32).data, currency: 'EURO', expiresAt: 'someday' }, field: /paylink mail data invalid at currency: .*; expiresAt: expected an ISO date/ },
    ];
    for (const [i, c] of cases.entries()) {
      // The data as an untyped caller would pass it (a typed caller's compiler already refuses it).
      const req = { ...paylinkRequest(30 + i), data: c.data } as MailRequest;
      await assert.rejects(enqueueMail(req, DOMAIN, repos.outbox), (err: unknown) => {
        assert.ok(isAppError(err, 'MAIL_DATA_INVALID'), String(err));
        assert.match(err.message, c.field);
        return true;
      });
    }
    // Nothing was queued: the caller learnt of it, no worker will.
    assert.equal(await Outbox.countDocuments({}), 0);
    assert.equal(await OutboxDue.countDocuments({}), 0);
  });

  it('reclaims a mail whose sender crashed (expired lease) but not one with a live lease', async () => {
    const crashed = await enqueueMail(paylinkRequest(5), DOMAIN, repos.outbox);
    const busy = await enqueueMail(paylinkRequest(6), DOMAIN, repos.outbox);
    const lease = (until: number) => ({ status: 'sending', leaseOwner: 'crashed-host:1', leaseUntil: new Date(until), attempts: 1 });
    await Outbox.updateOne({ _id: crashed._id }, { $set: lease(Date.now() - 1_000) });
    await Outbox.updateOne({ _id: busy._id }, { $set: lease(Date.now() + 30_000) });
    const w = worker();
    assert.equal(await w.runOnce(), 1);
    const c = await load(crashed._id);
    assert.equal(c.status, 'sent');
    assert.equal(c.attempts, 2);
    assert.equal((await load(busy._id)).status, 'sending');
    assert.deepEqual(relay.received.map((m) => m.messageId), [crashed.messageId]);
  });

  it('sends the oldest mail first', async () => {
    const ids = [];
    for (const n of [7, 8, 9]) ids.push((await enqueueMail(paylinkRequest(n), DOMAIN, repos.outbox))._id);
    // Created in the order 9, 7, 8 whatever the insertion order.
    const base = Date.now() - 60_000;
    for (const [i, offset] of [[0, 1_000], [1, 2_000], [2, 0]] as const) {
      await Outbox.collection.updateOne({ _id: ids[i] }, { $set: { createdAt: new Date(base + offset) } });
      // The due queue carries the creation time it was given at enqueue (src/db/due-queue.ts).
      await OutboxDue.collection.updateOne({ _id: ids[i] }, { $set: { created: new Date(base + offset) } });
    }
    assert.equal(await worker().runOnce(), 3);
    assert.deepEqual(relay.received.map((m) => m.parsed.subject?.match(/REF-\d/)?.[0]), ['REF-9', 'REF-7', 'REF-8']);
  });

  it('sends one mail for one dedupe key', async () => {
    const a = await enqueueMail(paylinkRequest(10), DOMAIN, repos.outbox);
    const b = await enqueueMail(paylinkRequest(10, { to: ['other@merchant.test'] }), DOMAIN, repos.outbox);
    assert.equal(String(a._id), String(b._id));
    const w = worker();
    assert.equal(await w.runOnce(), 1);
    await enqueueMail(paylinkRequest(10), DOMAIN, repos.outbox);
    assert.equal(await w.runOnce(), 0);
    assert.equal(relay.received.length, 1);
    assert.equal(await Outbox.countDocuments({}), 1);
  });

  it('wakes up on enqueue, reports health, and stops after the in-flight send', async () => {
    const w = worker({ now: undefined, pollMs: 60_000 });
    assert.equal(w.healthy(), false);
    w.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(w.healthy(), true);
    const started = Date.now();
    const doc = await enqueueMail(paylinkRequest(11), DOMAIN, repos.outbox);
    while (relay.received.length === 0 && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 20));
    assert.equal(relay.received.length, 1, 'sent long before the 60 s poll');
    await w.stop();
    assert.equal(w.healthy(), false);
    assert.equal((await load(doc._id)).status, 'sent');
  });

  it('captures the mail instead of relaying when no OUTBOUND_SMTP_URL is set', async () => {
    const doc = await enqueueMail(paylinkRequest(12, { cc: ['cc@merchant.test'] }), DOMAIN, repos.outbox);
    const w = worker({ transport: createMailTransport({ production: false }) });
    assert.equal(await w.runOnce(), 1);
    const d = await load(doc._id);
    assert.equal(d.status, 'sent');
    // The outbox keeps only the subject (it is scanned for due mail); the copy has the rest.
    assert.match(d.captured?.subject ?? '', /REF-12/);
    assert.deepEqual(Object.keys(d.captured ?? {}), ['subject']);
    const c = (await CapturedMail.findById(doc._id).lean())!;
    assert.ok(c, 'captured copy');
    assert.equal(c.from, FROM);
    assert.equal(c.to, 'shop12@merchant.test');
    assert.equal(c.cc, 'cc@merchant.test');
    assert.match(c.subject ?? '', /REF-12/);
    assert.match(c.text ?? '', /pay\/p12/);
    assert.match(c.html ?? '', /src="data:image\/png;base64,/);
    assert.doesNotMatch(c.html ?? '', /cid:/);
    assert.equal(relay.attempts.length, 0);
  });

  it('refuses capture mode in production', () => {
    assert.throws(() => createMailTransport({ production: true }), (e: unknown) => isAppError(e, 'MAIL_TRANSPORT_MISSING'));
  });

  it('sends each mail once when several workers race for the same outbox', async function () {
    this.timeout(60_000);
    const docs = [];
    for (let n = 100; n < 124; n++) docs.push(await enqueueMail(paylinkRequest(n), DOMAIN, repos.outbox));
    const workers = [worker({ ownerId: 'a' }), worker({ ownerId: 'b' }), worker({ ownerId: 'c' })];
    const handled = await Promise.all(workers.map((w) => w.runOnce()));
    assert.equal(handled.reduce((a, b) => a + b, 0), docs.length, `handled per worker: ${handled.join(', ')}`);
    const ids = relay.received.map((m) => m.messageId).sort();
    assert.deepEqual(ids, docs.map((d) => d.messageId).sort(), 'every mail exactly once');
    for (const d of docs) assert.equal((await load(d._id)).attempts, 1);
  });

  it('backs off exponentially up to one hour', () => {
    const mid = () => 0.5;
    assert.deepEqual([1, 2, 3, 4, 10, 40].map((n) => backoffDelay(n, mid)), [10_000, 20_000, 40_000, 80_000, 3_600_000, 3_600_000]);
    assert.equal(backoffDelay(1, () => 0), 7_500);
    assert.equal(backoffDelay(1, () => 1), 12_500);
  });

  describe('due queue and relay outages', () => {
    const subjects = () => relay.received.map((m) => m.parsed.subject?.match(/REF-\d+/)?.[0]);

    it('holds the whole queue while the relay refuses sessions, then sends oldest first', async () => {
      // 421 = "service not available": the relay as a whole, not this mail.
      relay.rejectWith((n) => (n <= 2 ? 421 : undefined));
      const docs = [];
      for (const n of [21, 22, 23]) docs.push(await enqueueMail(paylinkRequest(n), DOMAIN, repos.outbox));
      const w = worker();

      assert.equal(await w.runOnce(), 1, 'the first failure pauses the queue');
      const first = await load(docs[0]!._id);
      assert.equal(first.status, 'pending');
      for (const d of docs.slice(1)) assert.equal((await load(d._id)).attempts, 0, 'later mails were not tried');
      assert.equal(await w.runOnce(), 0, 'paused until the first mail is due again');

      offset = first.nextAttemptAt.getTime() - Date.now() + 1;
      assert.equal(await w.runOnce(), 1, 'relay still down: the oldest mail is tried again, alone');
      const again = await load(docs[0]!._id);
      offset = again.nextAttemptAt.getTime() - Date.now() + 1;
      assert.equal(await w.runOnce(), 3, 'relay back: everything goes');
      assert.deepEqual(subjects(), ['REF-21', 'REF-22', 'REF-23']);
      assert.equal(await OutboxDue.countDocuments(), 0, 'sent mail leaves the due queue');
    });

    it('holds the queue while the relay cannot be reached at all', async () => {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
      const port = (closed.address() as net.AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const docs = [await enqueueMail(paylinkRequest(24), DOMAIN, repos.outbox), await enqueueMail(paylinkRequest(25), DOMAIN, repos.outbox)];
      const w = worker({ transport: createMailTransport({ outboundSmtpUrl: `smtp://127.0.0.1:${port}`, production: false }) });
      assert.equal(await w.runOnce(), 1);
      const first = await load(docs[0]!._id);
      assert.equal(first.status, 'pending');
      assert.match(first.lastError ?? '', /ECONNECTION|ECONNREFUSED/);
      assert.equal((await load(docs[1]!._id)).attempts, 0);
    });

    it('tells relay-wide failures from a single recipient\'s', () => {
      const cases: Array<[string, object, boolean]> = [
        ['connection refused', { code: 'ECONNECTION', command: 'CONN' }, true],
        ['socket timeout', { code: 'ETIMEDOUT', command: 'CONN' }, true],
        ['421 at greeting', { code: 'ECONNECTION', responseCode: 421, command: 'EHLO' }, true],
        ['451 at MAIL FROM', { code: 'EENVELOPE', responseCode: 451, command: 'MAIL FROM' }, true],
        ['451 at DATA', { code: 'EMESSAGE', responseCode: 451, command: 'DATA' }, true],
        ['450 greylisted at RCPT TO', { code: 'EENVELOPE', responseCode: 450, command: 'RCPT TO' }, false],
        ['550 unknown user', { code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' }, false],
        ['554 at DATA', { code: 'EMESSAGE', responseCode: 554, command: 'DATA' }, false],
      ];
      for (const [name, err, down] of cases) assert.equal(isRelayDown(err), down, name);
    });

    it('drops an entry left by a crashed enqueue, and finds mail stored without an entry', async () => {
      const orphan = new mongoose.Types.ObjectId();
      const long = new Date(Date.now() - 5 * 60_000);
      await OutboxDue.create({ _id: orphan, due: long, created: long });
      // A mail written before the due queue existed (no entry): a new worker reconciles at start.
      const legacy = await enqueueMail(paylinkRequest(26), DOMAIN, repos.outbox);
      await OutboxDue.deleteOne({ _id: legacy._id });
      assert.equal(await worker().runOnce(), 1);
      assert.equal((await load(legacy._id)).status, 'sent');
      assert.equal(await OutboxDue.countDocuments({ _id: orphan }), 0, 'orphan entry removed');
      assert.deepEqual(subjects(), ['REF-26']);
    });
  });
});
