// The SMTP edge reads the error-code registry: an AppError the intake raises reaches the sending
// client as the registry's reply (code and enhanced text), on a real submission door with a real
// intake and database; a failure the registry gives no SMTP meaning stays a logged 451.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type SMTPServer } from 'smtp-server';
import { ERROR_CODES } from '../../src/domain/error-codes.ts';
import { AppError } from '../../src/domain/errors.ts';
import { close, listen, smtpReplyOf } from '../../src/inbound/smtp-common.ts';
import { createSubmissionServer } from '../../src/inbound/submission-server.ts';
import { loadSmtpTls, type TlsMaterial } from '../../src/inbound/tls.ts';
import { createLogger } from '../../src/logger.ts';
import { createIntakeService, type IntakeService } from '../../src/services/intake.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderService } from '../../src/services/order.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { rawClient } from '../helpers/smtp-raw-client.ts';

const MAIL_DOMAIN = 'paymail.test';

describe('SMTP replies from the error-code registry', function () {
  this.timeout(30_000);
  useTestDatabase();
  const logger = createLogger('silent');
  const orders = createOrderService({ repos, publicUrl: 'http://localhost:3000', mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, linkKeys: [{ kid: 't1', secret: 's'.repeat(32) }] });
  const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
  let dataDir: string;
  let tls: TlsMaterial;
  let shop: CreatedMerchant;
  let n = 0;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-codes-test-'));
    tls = await loadSmtpTls({ smtpTls: undefined, dataDir, production: false, hostname: MAIL_DOMAIN });
    shop = await merchants.create({ name: 'Codes', email: 'desk@codes.example', senderDomains: ['codes.example'] });
  });
  after(async () => rm(dataDir, { recursive: true, force: true }));

  /** Sends one order mail through a submission door over `intake`; the reply to the final dot. */
  async function send(intake: IntakeService): Promise<{ code: number; text: string }> {
    const server: SMTPServer = createSubmissionServer({ repos, merchants, intake, mailDomain: MAIL_DOMAIN, maxMessageBytes: 64 * 1024, tls, production: false, logger });
    const port = await listen(server, 0);
    const c = rawClient(port);
    try {
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.codes.example')).code, 250);
      assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${shop.smtpUser}\0${shop.smtpPassword}`).toString('base64')}`)).code, 235);
      assert.equal((await c.cmd(`MAIL FROM:<desk@codes.example>`)).code, 250);
      assert.equal((await c.cmd(`RCPT TO:<${shop.inboundAddress}>`)).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      await c.write(`From: desk@codes.example\r\nTo: ${shop.inboundAddress}\r\nMessage-ID: <codes.${++n}.${Date.now()}@codes.example>\r\nSubject: order\r\n\r\nAmount: 5\r\nReference: CODES-${n}\r\n`);
      return await c.cmd('.');
    } finally {
      c.end();
      await close(server);
    }
  }

  it('a message the intake cannot store: INTAKE_STORE_UNAVAILABLE answered with its registry reply', async () => {
    // The raw chunk is written, then the store fails (a plain error): the intake raises the AppError.
    const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger, afterRawChunk: () => { throw new Error('disk gone'); } });
    try {
      const r = await send(intake);
      const reply = ERROR_CODES.INTAKE_STORE_UNAVAILABLE!.smtp!;
      assert.equal(r.code, reply.code);
      assert.equal(r.text, `${reply.code} ${reply.text}`);
    } finally {
      await intake.close();
    }
  });

  it('an intake that is shutting down: INTAKE_CLOSING answered with its registry reply', async () => {
    const intake = createIntakeService({ repos, orders, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: 60, logger });
    await intake.close();
    const r = await send(intake);
    const reply = ERROR_CODES.INTAKE_CLOSING!.smtp!;
    assert.equal(r.code, reply.code);
    assert.equal(r.text, `${reply.code} ${reply.text}`);
  });

  it('maps every registry code with an SMTP reply, a per-error smtpCode, and nothing else', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      const mapped = smtpReplyOf(new AppError(code, 'x'));
      if (spec.smtp) assert.deepEqual([mapped?.responseCode, mapped?.message], [spec.smtp.code, spec.smtp.text], code);
      else assert.equal(mapped, undefined, code);
    }
    assert.equal(smtpReplyOf(new AppError('SOMETHING_NEW', 'x', { smtpCode: 550 }))?.responseCode, 550);
    assert.equal(smtpReplyOf(new Error('plain')), undefined);
  });
});
