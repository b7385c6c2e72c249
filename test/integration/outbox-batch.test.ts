// Batched enqueue (src/mail/outbox.ts enqueueMails, the outbox repository's enqueueMany): many
// mails in two batched writes, with the single enqueue's guarantees — every stored mail has its due
// entry and is sent by the worker once, a dedupe key queued before is left as it was (its stray due
// entry taken back), and a mail whose data breaks its contract is refused on its own.
import assert from 'node:assert/strict';
import path from 'node:path';
import mongoose from 'mongoose';
import { OutboxDue } from '../../src/db/due-queue.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { AppError } from '../../src/domain/errors.ts';
import { enqueueMail, enqueueMails, type MailRequest } from '../../src/mail/outbox.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { paylinkRequest } from '../helpers/mail-fixtures.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const TAG = { key: 'ord_batch', ref: 'BATCH', path: 'b' };
const mail = (n: number, over: Partial<MailRequest> = {}): MailRequest => paylinkRequest(n, over, TAG);

describe('outbox: batched enqueue', function () {
  this.timeout(30_000);
  useTestDatabase();
  let relay: SmtpSink;

  before(async () => {
    relay = await startSmtpSink();
  });
  after(() => relay.close());
  beforeEach(async () => {
    await Promise.all([Outbox.deleteMany({}), OutboxDue.deleteMany({})]);
    relay.reset();
  });

  it('stores many mails in one insert each for the mails and their due entries, and the worker sends each once', async () => {
    const inserts: string[] = [];
    mongoose.set('debug', (collection: string, method: string) => {
      if (/^insert/.test(method)) inserts.push(`${collection}.${method}`);
    });
    let outcomes;
    try {
      outcomes = await enqueueMails([1, 2, 3, 4, 5].map((n) => mail(n)), 'paymail.test', repos.outbox);
    } finally {
      mongoose.set('debug', false);
    }
    assert.deepEqual(outcomes, ['created', 'created', 'created', 'created', 'created']);
    assert.deepEqual(inserts.sort(), ['outbox.insertMany', 'outbox_due.insertMany']);
    const stored = await Outbox.find({}).lean<OutboxDoc[]>();
    assert.equal(stored.length, 5);
    assert.ok(stored.every((m) => m.status === 'pending' && m.attempts === 0 && /@paymail\.test>$/.test(m.messageId)));
    assert.equal(new Set(stored.map((m) => m.messageId)).size, 5, 'a Message-ID each');
    const due = await OutboxDue.find({}).lean<Array<{ _id: unknown }>>();
    assert.deepEqual(due.map((d) => String(d._id)).sort(), stored.map((m) => String(m._id)).sort(), 'one due entry per mail');

    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    const worker = createOutboxWorker({
      repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }),
      from: 'paymail <no-reply@paymail.test>',
      logger: createLogger('silent'),
    });
    await worker.runOnce();
    assert.equal(relay.mails.length, 5);
    assert.deepEqual(relay.mails.map((m) => m.parsed.subject?.match(/BATCH-\d/)?.[0]).sort(), ['BATCH-1', 'BATCH-2', 'BATCH-3', 'BATCH-4', 'BATCH-5']);
    assert.equal(await OutboxDue.countDocuments({}), 0);
    assert.equal(await worker.runOnce(), 0, 'nothing twice');
  });

  it('leaves a mail queued before under the same dedupe key as it was, and takes back its due entry', async () => {
    const first = await enqueueMail(mail(2), 'paymail.test', repos.outbox);
    const outcomes = await enqueueMails([mail(1), mail(2, { to: ['someone-else@merchant.test'] }), mail(3)], 'paymail.test', repos.outbox);
    assert.deepEqual(outcomes, ['created', 'existing', 'created']);
    const again = await Outbox.findOne({ dedupeKey: mail(2).dedupeKey }).lean<OutboxDoc>();
    assert.equal(again!.messageId, first.messageId);
    assert.deepEqual(again!.to, ['shop2@merchant.test']);
    assert.equal(await Outbox.countDocuments({}), 3);
    const due = await OutboxDue.find({}).lean<Array<{ _id: unknown }>>();
    const stored = await Outbox.find({}, { _id: 1 }).lean<Array<{ _id: unknown }>>();
    assert.deepEqual(due.map((d) => String(d._id)).sort(), stored.map((m) => String(m._id)).sort(), 'no due entry without its mail');
  });

  it('refuses a mail whose data breaks its contract on its own, naming the field; the others are queued', async () => {
    const bad = mail(2);
    bad.data = { ...(bad.data as Record<string, unknown>), currency: 'EURO' } as never;
    const outcomes = await enqueueMails([mail(1), bad, mail(3)], 'paymail.test', repos.outbox);
    assert.equal(outcomes[0], 'created');
    assert.equal(outcomes[2], 'created');
    const refused = outcomes[1];
    assert.ok(typeof refused === 'object' && refused.invalid instanceof AppError);
    assert.equal(refused.invalid.code, 'MAIL_DATA_INVALID');
    assert.match(refused.invalid.message, /currency/);
    assert.deepEqual((await Outbox.find({}).lean<OutboxDoc[]>()).map((m) => m.dedupeKey).sort(), [mail(1).dedupeKey, mail(3).dedupeKey]);
    assert.equal(await OutboxDue.countDocuments({}), 2);
  });

});
