// Chunked raw-mail storage (inbound_raw `<message id>:<n>`): a mail over MongoDB's 16 MiB document
// limit goes through the real submission door and becomes its order; a crash between the chunks
// and the message document leaves no message; messages stored before chunking still process; a
// duplicate delivery leaves no chunks behind.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { type SMTPServer } from 'smtp-server';
import { InboundMessage, InboundRaw, RAW_CHUNK_BYTES, insertRawChunk, rawChunkId, readRaw, type InboundMessageDoc } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { isAppError } from '../../src/domain/errors.ts';
import { close, createSubmissionServer, listen } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService, extractMessageId } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const MAIL_DOMAIN = 'paymail.test';
const MiB = 1024 * 1024;
const SMALL_CHUNK = 16 * 1024;

describe('intake: chunked raw storage', function () {
  this.timeout(60_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos,
    publicUrl: 'http://localhost:3000',
    mailDomain: MAIL_DOMAIN,
    maxLinkLifetimeDays: 60,
    linkKeys: [{ kid: 't1', secret: 'c'.repeat(32) }],
  });
  const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
  // Small chunks: several chunks per test mail without megabytes of test data.
  const smallChunks = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, rawChunkBytes: SMALL_CHUNK });
  let shop: CreatedMerchant;
  let n = 0;

  before(async () => {
    shop = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Chunky', email: 'owner@chunky.example' });
  });
  afterEach(async () => {
    await intake.idle();
    await smallChunks.idle();
  });
  after(async () => {
    await intake.close();
    await smallChunks.close();
  });

  /** A text order mail padded to about `bytes` with a body of filler lines. */
  function mail(reference: string, bytes = 0): Buffer {
    const filler = 'x'.repeat(76) + '\r\n';
    const body = `Amount: 12.50 EUR\r\nReference: ${reference}\r\n\r\n-- \r\n${filler.repeat(Math.ceil(bytes / filler.length))}`;
    return Buffer.from(
      `From: owner@chunky.example\r\nTo: ${shop.inboundAddress}\r\nSubject: Order ${reference}\r\n` +
        `Message-ID: <chunk-${++n}.${Date.now()}@chunky.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
    );
  }
  const storeWith = (svc: typeof intake, raw: Buffer) => svc.store({ merchantId: shop.id, door: 'submission', raw, envelope: { rcptTo: [] } });
  const rawCount = () => InboundRaw.collection.countDocuments({});
  const chunkIds = (id: string, count: number) => Array.from({ length: count }, (_, k) => rawChunkId(id, k));
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  describe('through the submission door', () => {
    let dataDir: string;
    let server: SMTPServer;
    let port: number;

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-chunks-test-'));
      const tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
      const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
      server = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 40 * MiB, tls, production: false, logger });
      port = await listen(server, 0);
    });
    after(async () => {
      await close(server);
      await rm(dataDir, { recursive: true, force: true });
    });

    it('stores a 30 MiB mail (over the 16 MiB document limit), processes it and makes its order', async () => {
      const env = { from: 'owner@chunky.example', to: shop.inboundAddress };
      const raw = await new MailComposer({
        ...env,
        subject: 'Scan attached',
        // CRLF line ends: the SMTP client would turn bare LFs into CRLF and the bytes would differ.
        text: 'Amount: 99.00 EUR\r\nReference: BIG-30\r\n',
        // 22.5 MiB of bytes → ~30.4 MiB of base64 MIME.
        attachments: [{ filename: 'scan.bin', content: randomBytes(Math.round(22.5 * MiB)) }],
      })
        .compile()
        .build();
      assert.ok(raw.length > 30 * MiB, `mail is ${raw.length} bytes`);
      const smtp = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, auth: { user: shop.smtpUser, pass: shop.smtpPassword }, tls: { rejectUnauthorized: false } });
      const info = await smtp.sendMail({ envelope: env, raw });
      smtp.close();
      const id = /stored as ([0-9a-f]{24})/.exec(info.response)?.[1];
      assert.ok(id, info.response);

      const msg = await InboundMessage.findById(id).lean<InboundMessageDoc>();
      assert.equal(msg?.size, raw.length);
      assert.equal(msg?.rawChunks, Math.ceil(raw.length / RAW_CHUNK_BYTES));
      assert.equal(msg?.raw, undefined);
      for (const _id of chunkIds(id, msg!.rawChunks!)) assert.ok(await InboundRaw.collection.findOne({ _id: _id as never }, { projection: { _id: 1 } }), _id);
      assert.equal(sha(await readRaw(msg!)), sha(raw));

      await intake.idle();
      assert.equal((await InboundMessage.findById(id).lean<InboundMessageDoc>())?.status, 'processed');
      const order = await Order.findOne({ merchantId: shop.id, reference: 'BIG-30' }).lean();
      assert.equal(order?.amountMinor, 9900);
      assert.equal(order?.source?.inboundMessageId, id);
    });
  });

  const crashes: Array<[string, number]> = [
    ['after the first chunk', 0],
    ['after the last chunk, before the message document', 3],
  ];
  for (const [name, at] of crashes) {
    it(`a crash ${name} leaves no message, and the retry stores it once`, async () => {
      const raw = mail(`CRASH-${at}`, 3 * SMALL_CHUNK + 100); // 4 chunks
      const crashing = createIntakeService({ repos,
        orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, rawChunkBytes: SMALL_CHUNK,
        afterRawChunk: (k, count) => {
          assert.equal(count, 4);
          if (k === at) throw new Error('simulated crash');
        },
      });
      const before = await rawCount();
      await assert.rejects(storeWith(crashing, raw), (e) => isAppError(e, 'INTAKE_STORE_UNAVAILABLE'));
      await crashing.close();
      assert.equal(await InboundMessage.countDocuments({ messageKey: extractMessageId(raw) }), 0);
      assert.equal(await rawCount(), before + at + 1, 'only the orphan chunks written before the crash');
      assert.equal(await smallChunks.runOnce(), 0, 'nothing to process');

      // The sender retries after its 451.
      const stored = await storeWith(smallChunks, raw);
      assert.equal(stored.duplicate, false);
      await smallChunks.idle();
      assert.equal((await InboundMessage.findById(stored.id).lean<InboundMessageDoc>())?.status, 'processed');
      assert.equal(await Order.countDocuments({ merchantId: shop.id, reference: `CRASH-${at}` }), 1);
    });
  }

  it('still processes raw mail stored before chunking (one document under the message id)', async () => {
    const raw = mail('LEGACY-1');
    const _id = new mongoose.Types.ObjectId();
    await InboundRaw.collection.insertOne({ _id: _id as never, raw });
    await InboundMessage.create({
      _id, merchantId: shop.id, door: 'submission', messageKey: extractMessageId(raw)!, messageId: extractMessageId(raw), size: raw.length, status: 'received',
    });
    const outcome = await intake.process(String(_id));
    assert.equal(outcome.status, 'processed', JSON.stringify(outcome));
    assert.equal(await Order.countDocuments({ merchantId: shop.id, reference: 'LEGACY-1' }), 1);
  });

  // After a restart (or a retry) the bytes are read back from the chunks, not taken from memory.
  const readBack: Array<[string, number[], 'processed' | 'retry']> = [
    ['reads a chunked message back from the database and processes it', [0, 1, 2], 'processed'],
    ['a chunked message with a chunk missing is not processed from partial bytes', [0, 2], 'retry'],
  ];
  for (const [name, present, status] of readBack) {
    it(name, async () => {
      const reference = `READ-${present.length}`;
      const raw = mail(reference, 2 * SMALL_CHUNK); // 3 chunks
      const _id = new mongoose.Types.ObjectId();
      for (const k of present) await insertRawChunk(String(_id), k, raw.subarray(k * SMALL_CHUNK, (k + 1) * SMALL_CHUNK));
      await InboundMessage.create({
        _id, merchantId: shop.id, door: 'submission', messageKey: extractMessageId(raw)!, size: raw.length, rawChunks: 3, status: 'received',
      });
      const outcome = await intake.process(String(_id));
      assert.equal(outcome.status, status, JSON.stringify(outcome));
      assert.equal(await Order.countDocuments({ merchantId: shop.id, reference }), status === 'processed' ? 1 : 0);
      if (status === 'retry') assert.match((await InboundMessage.findById(_id).lean<InboundMessageDoc>())?.lastError ?? '', /missing raw chunk 1 of 3/);
    });
  }

  it('a duplicate delivery deletes the chunks it wrote', async () => {
    const raw = mail('DUP-1', 2 * SMALL_CHUNK + 10); // 3 chunks
    const first = await storeWith(smallChunks, raw);
    await smallChunks.idle();
    const afterFirst = await rawCount();
    const again = await storeWith(smallChunks, raw);
    assert.deepEqual(again, { id: first.id, duplicate: true });
    // Two at once: one of them, or neither, is new; none leaves chunks.
    const both = await Promise.all([storeWith(smallChunks, raw), storeWith(smallChunks, raw)]);
    assert.deepEqual(both.map((r) => r.duplicate), [true, true]);
    await smallChunks.idle();
    assert.equal(await rawCount(), afterFirst);
    assert.equal((await InboundMessage.findById(first.id).lean<InboundMessageDoc>())?.rawChunks, 3);
    assert.equal(await Order.countDocuments({ merchantId: shop.id, reference: 'DUP-1' }), 1);
  });
});
