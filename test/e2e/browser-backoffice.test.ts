// The back office in a real browser (Debian's Chromium driven by playwright-core) against paymail
// started as a process: the admin printed by `paymail merchant create` logs in with JavaScript
// off, finds a mailed order, cancels it, downloads the CSV; a viewer sees no actions; the list
// fits a phone. Screenshots go to test-output/screenshots/.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { MerchantUser } from '../../src/db/models/merchant-user.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { runCli, startPaymail, type PaymailProcess } from '../helpers/paymail-process.ts';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-output/screenshots');

describe('e2e: back office in a real browser', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let sink: SmtpSink;
  let app: PaymailProcess;
  let browser: Browser;
  let dataDir: string;
  let base: string;
  let merchant: { id: string; inboundAddress: string; smtpUser: string; smtpPassword: string; adminEmail: string; adminPassword: string };
  const references: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}`);
      this.skip();
    }
    await mkdir(SHOTS, { recursive: true });
    sink = await startSmtpSink();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-bo-browser-'));
    const httpPort = await freePort();
    base = `http://localhost:${httpPort}`;
    const env = {
      MONGODB_URI: db.uri(),
      DATA_DIR: dataDir,
      HTTP_PORT: String(httpPort),
      PUBLIC_URL: base,
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      OUTBOUND_SMTP_URL: sink.url,
      MAIL_DOMAIN: 'paymail.test',
    };
    const cli = await runCli(['merchant', 'create', '--name', 'Hotel Bellavista', '--email', 'desk@bellavista.example', '--json'], env);
    assert.equal(cli.code, 0, cli.stderr);
    merchant = JSON.parse(cli.stdout);
    app = await startPaymail(env);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    // Three orders arrive by mail through the submission door, as merchants send them.
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: app.ports.submission,
      auth: { user: merchant.smtpUser, pass: merchant.smtpPassword },
      tls: { rejectUnauthorized: false },
    });
    for (const [i, amount, customer] of [[1, '129,90 €', 'Anna Rossi'], [2, '84.00 EUR', 'Marco Bianchi'], [3, '1.250,00 €', 'Giulia Verdi']] as const) {
      const reference = `BK-${Date.now()}-${i}`;
      references.push(reference);
      await smtp.sendMail({
        from: 'desk@bellavista.example',
        to: merchant.inboundAddress,
        subject: `Booking ${reference}`,
        text: `Amount: ${amount}\nReference: ${reference}\nDescription: Double room, 2 nights\nCustomer: ${customer}\n`,
      });
    }
    smtp.close();
    for (const reference of references) await sink.waitFor((m) => (m.parsed.text ?? '').includes(reference));
  });

  after(async () => {
    await browser?.close();
    if (app) assert.equal(await app.stop(), 0);
    await sink?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function logIn(page: Page, email: string, password: string) {
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
  }

  it('logs in, searches, cancels an order and downloads the CSV with JavaScript off', async () => {
    const ctx = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${base}/backoffice/orders`);
    assert.match(page.url(), /\/backoffice\/login\?next=/);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByLabel('E-mail').fill(merchant.adminEmail);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Wrong e-mail or password/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-login-refused.png'), fullPage: true });

    await logIn(page, merchant.adminEmail, merchant.adminPassword);
    assert.match(page.url(), /\/backoffice\/orders$/);
    assert.equal(await page.locator('table.orders tbody tr').count(), 3);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-orders.png'), fullPage: true });

    const target = references[1]!;
    await page.getByLabel('Reference').fill(target);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForLoadState();
    const rows = page.locator('table.orders tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match((await rows.first().textContent()) ?? '', /€84\.00/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-search.png'), fullPage: true });

    await page.getByRole('link', { name: target }).click();
    await page.waitForLoadState();
    const history = (await page.locator('.timeline').textContent()) ?? '';
    assert.match(history, /Order e-mail received/);
    assert.match(history, /Pay-link mailed to desk@bellavista\.example/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order.png'), fullPage: true });
    await page.getByRole('button', { name: 'Cancel this order' }).click();
    await page.waitForLoadState();
    assert.match((await page.getByRole('status').textContent()) ?? '', /The order was cancelled/);
    assert.match((await page.locator('.timeline').textContent()) ?? '', /Cancelled/);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-cancelled.png'), fullPage: true });
    const cancelled = (await Order.findOne({ reference: target }).lean<OrderDoc>())!;
    assert.equal(cancelled.status, 'cancelled');

    await page.getByRole('link', { name: 'Export' }).click();
    await page.waitForLoadState();
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-export.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^orders-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = await readFile((await download.path())!, 'utf8');
    const lines = csv.replace(/^\uFEFF/, '').trim().split('\r\n');
    assert.match(lines[0]!, /^created_at,order_id,reference,status,amount,currency,/);
    assert.equal(lines.length, 4);
    assert.ok(lines.some((l) => l.includes(target) && l.includes(',cancelled,84.00,EUR,')), csv);
    assert.ok(lines.some((l) => l.includes(references[2]!) && l.includes(',pending,1250.00,EUR,')), csv);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForLoadState();
    assert.match(page.url(), /\/backoffice\/login$/);
    await page.goto(`${base}/backoffice/orders`);
    assert.match(page.url(), /\/backoffice\/login/);
    await ctx.close();
  });

  it('shows a viewer the orders without any action, and fits a 375 px phone', async () => {
    await MerchantUser.create({ merchantId: merchant.id, email: 'viewer@bellavista.example', passwordHash: await hashPassword('viewer password 1'), role: 'viewer' });
    const ctx = await browser.newContext({ viewport: { width: 375, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${base}/backoffice/login`);
    await logIn(page, 'viewer@bellavista.example', 'viewer password 1');
    assert.match(page.url(), /\/backoffice\/orders$/);
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 375, `no horizontal scrolling at 375 px (content is ${width} px wide)`);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-orders-375px.png'), fullPage: true });
    assert.equal(await page.getByRole('link', { name: 'Export' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'New pay-link' }).count(), 0);
    await page.getByRole('link', { name: references[0]! }).click();
    await page.waitForLoadState();
    assert.equal(await page.getByRole('button', { name: 'Cancel this order' }).count(), 0);
    await page.screenshot({ path: path.join(SHOTS, 'backoffice-order-viewer-375px.png'), fullPage: true });
    const res = await page.goto(`${base}/backoffice/export`);
    assert.equal(res?.status(), 403);
    await ctx.close();
  });
});
