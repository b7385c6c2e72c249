// The engine seam (src/db/engine.ts): the lease referees insert a claim on FerretDB, whose
// conditional updates are not atomic, and nothing on MongoDB, whose conditional update referees by
// itself. The race tests (outbox-worker, work-runner, two-instances) run the FerretDB path; here
// the MongoDB path's logic runs on the embedded engine one worker at a time — a take, a lease
// take-over, a live lease left alone, an inbound message, a secret rotation — and must insert no
// claim and behave exactly as the FerretDB path does.
import assert from 'node:assert/strict';
import path from 'node:path';
import mongoose from 'mongoose';
import { Claim } from '../../src/db/claims.ts';
import { InboundDue, OutboxDue } from '../../src/db/due-queue.ts';
import { describeEngine, engineGuarantees, guaranteesOf, setEngineGuarantees, type EngineGuarantees } from '../../src/db/engine.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail, type MailRequest } from '../../src/mail/outbox.ts';
import { createMailRenderer, type MailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { paylinkRequest } from '../helpers/mail-fixtures.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const MONGODB: EngineGuarantees = { name: 'mongodb', version: '7.0.14', atomicConditionalUpdates: true };

const mail = (n: number): MailRequest => paylinkRequest(n, {}, { key: 'ord_engine', ref: 'REF', path: 'p' });

const claimsLike = (prefix: string) => Claim.countDocuments({ _id: { $regex: `^${prefix}` } });

describe('engine guarantees: lease referees per engine', function () {
  this.timeout(30_000);
  useTestDatabase();
  let renderer: MailRenderer;
  let relay: SmtpSink;
  let saved: EngineGuarantees;

  const worker = () =>
    createOutboxWorker({
      repos,
      renderer,
      transport: createMailTransport({ outboundSmtpUrl: relay.url, production: false }),
      from: 'paymail <no-reply@paymail.test>',
      logger: createLogger('silent'),
    });

  before(async () => {
    saved = engineGuarantees();
    renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    relay = await startSmtpSink();
  });
  after(async () => {
    setEngineGuarantees(saved);
    await relay.close();
  });
  beforeEach(async () => {
    await Promise.all([Outbox.deleteMany({}), OutboxDue.deleteMany({}), Claim.deleteMany({}), InboundMessage.deleteMany({}), InboundDue.deleteMany({})]);
    relay.reset();
  });
  afterEach(() => setEngineGuarantees(saved));

  it('tells FerretDB from MongoDB by buildInfo, and the test engine is FerretDB', async () => {
    const g = await describeEngine(mongoose.connection);
    const info = (await mongoose.connection.db!.admin().command({ buildInfo: 1 })) as { ferretdbVersion?: string; ferretdb?: { version?: string } };
    assert.equal(g.name, info.ferretdbVersion ?? info.ferretdb?.version ? 'ferretdb' : 'mongodb');
    assert.equal(g.name, 'ferretdb', 'the tests run on the embedded FerretDB');
    assert.equal(g.atomicConditionalUpdates, false);
    assert.deepEqual(guaranteesOf({ version: '7.0.14' }), MONGODB);
    assert.deepEqual(guaranteesOf({ version: '7.0.42', ferretdbVersion: 'v1.24.1' }), { name: 'ferretdb', version: 'v1.24.1', atomicConditionalUpdates: false });
  });

  it('FerretDB: every take of an outbox mail is refereed by a lease claim', async () => {
    setEngineGuarantees({ name: 'ferretdb', atomicConditionalUpdates: false });
    for (const n of [1, 2, 3]) await enqueueMail(mail(n), 'paymail.test', repos.outbox);
    assert.equal(await worker().runOnce(), 3);
    assert.equal(relay.mails.length, 3);
    assert.equal(await claimsLike('outbox:'), 3);
  });

  it('MongoDB: the conditional update alone takes each mail once; no claim is inserted', async () => {
    setEngineGuarantees(MONGODB);
    for (const n of [1, 2, 3]) await enqueueMail(mail(n), 'paymail.test', repos.outbox);
    const w = worker();
    const calls: string[] = [];
    mongoose.set('debug', (collection: string, method: string) => void (collection === 'outbox' && calls.push(method)));
    try {
      assert.equal(await w.runOnce(), 3);
    } finally {
      mongoose.set('debug', false);
    }
    // The take is the conditional update itself: no read of the mail before it (one request less a mail).
    assert.equal(calls.filter((c) => c === 'findOneAndUpdate').length, 6, `a take and a settle a mail: ${calls.join(', ')}`);
    assert.deepEqual(calls.filter((c) => c === 'findOne'), [], calls.join(', '));
    assert.equal(await w.runOnce(), 0, 'nothing is taken twice');
    assert.equal(relay.mails.length, 3);
    assert.equal(await Outbox.countDocuments({ status: 'sent' }), 3);
    assert.equal(await Claim.countDocuments({}), 0, 'no lease claim on MongoDB');
  });

  it('MongoDB: a lapsed lease is taken over, a live one is left alone', async () => {
    setEngineGuarantees(MONGODB);
    await enqueueMail(mail(1), 'paymail.test', repos.outbox);
    await enqueueMail(mail(2), 'paymail.test', repos.outbox);
    const [a, b] = await Outbox.find({}).sort({ createdAt: 1 }).lean<OutboxDoc[]>();
    // a: its sender died an hour ago; b: its sender is still at it for a minute.
    await Outbox.updateOne({ _id: a!._id }, { $set: { status: 'sending', leaseOwner: 'dead', attempts: 1, leaseUntil: new Date(Date.now() - 3_600_000) } });
    await Outbox.updateOne({ _id: b!._id }, { $set: { status: 'sending', leaseOwner: 'alive', attempts: 1, leaseUntil: new Date(Date.now() + 60_000) } });
    assert.equal(await worker().runOnce(), 1);
    assert.equal(relay.mails.length, 1);
    assert.equal((await Outbox.findById(a!._id).lean<OutboxDoc>())!.status, 'sent');
    assert.equal((await Outbox.findById(b!._id).lean<OutboxDoc>())!.status, 'sending');
    assert.equal(await Claim.countDocuments({}), 0);
  });

  it('MongoDB: an inbound message is taken once for processing, with no claim', async () => {
    setEngineGuarantees(MONGODB);
    const id = repos.inbound.newId();
    const at = new Date();
    await repos.inbound.create(id, {
      merchantId: 'm_engine',
      door: 'submission',
      messageKey: 'k1',
      messageId: '<k1@merchant.test>',
      bodyHash: 'h',
      envelope: { mailFrom: 'shop@merchant.test', rcptTo: ['orders@paymail.test'] },
      size: 10,
      rawChunks: 0,
      status: 'received',
      receivedAt: at,
    } as never);
    const [entry] = await repos.inbound.dueCandidates(at, 10);
    assert.ok(entry);
    const calls: string[] = [];
    mongoose.set('debug', (collection: string, method: string) => void (collection === 'inbound_messages' && calls.push(method)));
    let first;
    try {
      first = await repos.inbound.claim(entry, 'w1', 60_000, at);
    } finally {
      mongoose.set('debug', false);
    }
    assert.deepEqual(calls, ['findOneAndUpdate'], 'the take is the conditional update alone');
    assert.equal(first?.status, 'processing');
    assert.equal(first?.attempts, 1);
    assert.equal(await repos.inbound.claim(entry, 'w2', 60_000, at), null, 'held by w1');
    // w1 dies: once its lease lapsed, w2 takes the message over.
    const later = new Date(at.getTime() + 61_000);
    const taken = await repos.inbound.claim(entry, 'w2', 60_000, later);
    assert.equal(taken?.leaseOwner, 'w2');
    assert.equal(taken?.attempts, 2);
    assert.equal(await Claim.countDocuments({}), 0);
  });

  it('MongoDB: a secret rotation keeps the replaced key as previous, with no claim', async () => {
    setEngineGuarantees(MONGODB);
    const id = 'm_engine_rotation';
    await Merchant.collection.insertOne({ _id: id as never, name: 'Rotations', email: 'r@merchant.test', webhookSecret: 'whsec_one' });
    const until = new Date(Date.now() + 86_400_000);
    assert.equal(await repos.merchants.rotateWebhookSecret(id, 'whsec_two', until), true);
    assert.equal(await repos.merchants.rotateWebhookSecret(id, 'whsec_three', until), true);
    const m = await Merchant.collection.findOne({ _id: id as never });
    assert.equal(m?.webhookSecret, 'whsec_three');
    assert.equal(m?.previousWebhookSecret, 'whsec_two');
    assert.equal(await Claim.countDocuments({}), 0);
    assert.equal(await repos.merchants.rotateWebhookSecret('m_missing', 'x', until), false);
  });
});
