// The checkout in a real browser (Debian's Chromium driven by playwright-core), as a customer uses
// it: with JavaScript off (the page must work without it), declined then approved, keyboard only.
// Screenshots of every final page go to test-output/screenshots/.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { runCli, startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-output/screenshots');

describe('e2e: checkout in a real browser', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let sink: SmtpSink;
  let app: PaymailProcess;
  let browser: Browser;
  let dataDir: string;
  let merchant: { inboundAddress: string; smtpUser: string; smtpPassword: string };
  let orderNo = 0;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // CI installs Chromium (.ci/run) and must run these; a developer without it sees them pending.
      if (process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}`);
      this.skip();
    }
    await mkdir(SHOTS, { recursive: true });
    sink = await startSmtpSink();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-browser-'));
    const httpPort = await freePort();
    const env = {
      MONGODB_URI: db.uri(),
      DATA_DIR: dataDir,
      HTTP_PORT: String(httpPort),
      PUBLIC_URL: `http://localhost:${httpPort}`,
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      OUTBOUND_SMTP_URL: sink.url,
      MAIL_DOMAIN: 'paymail.test',
    };
    const cli = await runCli(['merchant', 'create', '--name', 'Teatro Verdi', '--email', 'box@verdi.example', '--json'], env);
    assert.equal(cli.code, 0, cli.stderr);
    merchant = JSON.parse(cli.stdout);
    app = await startPaymail(env);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  });

  after(async () => {
    await browser?.close();
    if (app) assert.equal(await app.stop(), 0);
    await sink?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Mails an order to the submission door and returns its pay-link from the pay-link mail. */
  async function orderLink(amount: string): Promise<{ link: string; reference: string }> {
    const reference = `TKT-${Date.now()}-${++orderNo}`;
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: app.ports.submission,
      auth: { user: merchant.smtpUser, pass: merchant.smtpPassword },
      tls: { rejectUnauthorized: false },
    });
    await smtp.sendMail({
      from: 'box@verdi.example',
      to: merchant.inboundAddress,
      subject: `Tickets ${reference}`,
      text: `Amount: ${amount}\nReference: ${reference}\nDescription: 2 tickets, La Traviata\n`,
    });
    smtp.close();
    const mail = await sink.waitFor((m) => (m.parsed.text ?? '').includes(reference));
    const link = /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!;
    return { link, reference };
  }

  async function fillCard(page: Page, number: string) {
    await page.getByLabel('Card number').fill(number);
    await page.getByLabel('Expiry (MM/YY)').fill('12/30');
    await page.getByLabel('Security code').fill('123');
    await page.getByLabel('Name on card').fill('Giulia Verdi');
    const email = page.getByLabel('Email');
    if (await email.count()) await email.fill('giulia@example.org');
  }

  it('pays with 4242 4242 4242 4242 with JavaScript off', async () => {
    const { link, reference } = await orderLink('84,00 €');
    const ctx = await browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    await page.goto(link);
    await page.screenshot({ path: path.join(SHOTS, 'checkout-form.png'), fullPage: true });
    await fillCard(page, '4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Pay €84.00' }).click();
    await page.waitForLoadState();
    const body = await page.textContent('body');
    assert.match(body ?? '', /RCPT-/);
    assert.match(body ?? '', /4242/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-no-js.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
  });

  it('shows a decline, then takes another card, at 320 px wide', async () => {
    const { link, reference } = await orderLink('25.00 EUR');
    const ctx = await browser.newContext({ viewport: { width: 320, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(link);
    await fillCard(page, '4000 0000 0000 9995');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
    const alert = page.getByRole('alert').first();
    assert.match((await alert.textContent()) ?? '', /insufficient funds/i);
    await page.screenshot({ path: path.join(SHOTS, 'declined-320px.png'), fullPage: true });
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 320, `no horizontal scrolling at 320 px (content is ${width} px wide)`);
    await fillCard(page, '5555 5555 5555 4444');
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
    assert.match((await page.textContent('body')) ?? '', /RCPT-/);
    await page.screenshot({ path: path.join(SHOTS, 'receipt-after-decline.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
    assert.deepEqual(order.attempts.map((a) => a.outcome), ['declined', 'approved']);
  });

  it('can be paid with the keyboard only', async () => {
    const { link, reference } = await orderLink('10 EUR');
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(link);
    await page.getByLabel('Card number').focus();
    for (const value of ['4242424242424242', '1230', '123', 'Giulia Verdi', 'giulia@example.org']) {
      await page.keyboard.type(value);
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    await page.waitForLoadState();
    await page.screenshot({ path: path.join(SHOTS, 'receipt-keyboard.png'), fullPage: true });
    await ctx.close();
    const order = (await Order.findOne({ reference }).lean<OrderDoc>())!;
    assert.equal(order.status, 'paid');
  });
});
