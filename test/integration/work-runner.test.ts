import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { OutboxDue } from '../../src/db/due-queue.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail, type MailRequest } from '../../src/mail/outbox.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { paylinkRequest } from '../helpers/mail-fixtures.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';

const DOMAIN = 'paymail.test';
const FROM = `paymail <no-reply@${DOMAIN}>`;
const logger = createLogger('silent');

const paylink = (n: number): MailRequest => paylinkRequest(n, {}, { key: 'wr', ref: 'WR', path: 'w' });

/** A bulk mail as far as the queue is concerned (its data is never rendered in these tests, but enqueueMail checks it). */
const recap = (n: number): MailRequest => ({
  dedupeKey: `recap:wr_${n}`,
  template: 'daily-recap',
  locale: 'en',
  to: [`m${n}@merchant.test`],
  data: { merchantName: `Shop ${n}`, date: '2031-02-27', payments: {}, failed: { count: 0, items: [] }, expired: { count: 0, items: [] }, chart: { currency: 'EUR', days: [] } },
});

/** A sink that counts TCP connections and notes each mail's subject in arrival order. */
async function countingSink() {
  const subjects: string[] = [];
  let connections = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onConnect(_s, cb) {
      connections++;
      cb();
    },
    onData(stream, _s, cb) {
      let head = '';
      stream.on('data', (c: Buffer) => (head += c.toString('latin1')));
      stream.once('end', () => {
        subjects.push(/^Subject:\s*(.*)$/im.exec(head)?.[1] ?? '');
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    subjects,
    connections: () => connections,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('work runner: outbox queue', function () {
  this.timeout(30_000);
  useTestDatabase();
  let renderer: MailRenderer;

  before(async () => {
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
  });
  beforeEach(async () => {
    await Outbox.deleteMany({});
    await OutboxDue.deleteMany({});
  });

  it('offers urgent mail (pay-links) before bulk mail (recaps) queued earlier', async () => {
    const bulk = [await enqueueMail(recap(1), DOMAIN, repos.outbox), await enqueueMail(recap(2), DOMAIN, repos.outbox)];
    const urgent = await enqueueMail(paylink(1), DOMAIN, repos.outbox);
    const due = await repos.outbox.dueCandidates(new Date(Date.now() + 1_000), 10);
    assert.deepEqual(
      due.map((c) => String(c._id)),
      [urgent, ...bulk].map((d) => String(d._id)),
    );
  });

  it('settles only under the lease: after a take-over the old holder writes nothing', async () => {
    await enqueueMail(paylink(2), DOMAIN, repos.outbox);
    const [entry] = await repos.outbox.dueCandidates(new Date(), 1);
    const mine = await repos.outbox.claim(entry!, 'a', 60_000, new Date());
    assert.ok(mine);
    // Another worker took it over after a's lease ran out (its next attempt).
    await Outbox.updateOne({ _id: mine._id }, { $set: { leaseOwner: 'b', attempts: mine.attempts + 1 } });
    assert.equal(await repos.outbox.retryLater(mine, 'a', new Date(Date.now() + 60_000), 'late failure'), false);
    assert.equal(await repos.outbox.markSent(mine, 'a', new Date()), false);
    const after = (await Outbox.findById(mine._id).lean<OutboxDoc>())!;
    assert.equal(after.status, 'sending');
    assert.equal(after.leaseOwner, 'b');
    assert.equal(after.lastError, undefined);
  });

  it('sends many mails over one pooled relay connection, concurrently when configured', async () => {
    const sink = await countingSink();
    const transport = createMailTransport({ outboundSmtpUrl: sink.url, production: false, maxConnections: 2 });
    try {
      for (let n = 10; n < 16; n++) await enqueueMail(paylink(n), DOMAIN, repos.outbox);
      const w = createOutboxWorker({ repos, renderer, transport, from: FROM, logger, concurrency: 2 });
      assert.equal(await w.runOnce(), 6);
      assert.equal(sink.subjects.length, 6);
      assert.ok(sink.connections() <= 2, `${sink.connections()} connections for 6 mails`);
      assert.equal(await Outbox.countDocuments({ status: 'sent' }), 6);
    } finally {
      transport.close();
      await sink.close();
    }
  });

  it('with several lanes, one probe finds the relay down; once it is back the held mails leave strictly oldest first', async () => {
    const relay = await startSmtpSink();
    relay.rejectWith((n) => (n <= 2 ? 421 : undefined));
    const transport = createMailTransport({ outboundSmtpUrl: relay.url, production: false, maxConnections: 3 });
    let offset = 0;
    try {
      const docs: OutboxDoc[] = [];
      for (let n = 20; n < 26; n++) docs.push(await enqueueMail(paylink(n), DOMAIN, repos.outbox));
      const w = createOutboxWorker({ repos, renderer, transport, from: FROM, logger, concurrency: 3, now: () => new Date(Date.now() + offset) });
      assert.equal(await w.runOnce(), 1, 'one probe, not three mails at once');
      const due = async () => (await Outbox.findById(docs[0]!._id).lean<OutboxDoc>())!.nextAttemptAt.getTime() - Date.now() + 1;
      offset = await due();
      assert.equal(await w.runOnce(), 1, 'still down: the oldest mail alone again');
      offset = await due();
      assert.equal(await w.runOnce(), 6);
      assert.deepEqual(
        relay.received.map((m) => m.parsed.subject?.match(/WR-\d+/)?.[0]),
        docs.map((_, i) => `WR-${20 + i}`),
      );
    } finally {
      transport.close();
      await relay.close();
    }
  });
});
