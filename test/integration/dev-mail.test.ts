import assert from 'node:assert/strict';
import { type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { devMailRouter } from '../../src/http/dev/dev-mail.routes.ts';
import { createOutboxWorker } from '../../src/jobs/outbox-worker.ts';
import { createLogger } from '../../src/logger.ts';
import { enqueueMail, type MailRequest } from '../../src/mail/outbox.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMailTransport } from '../../src/mail/transport.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const DOMAIN = 'paymail.test';
const LINK = 'http://localhost:3000/pay/AbC?e=1&s=x';

function request(n: number, merchantName: string): MailRequest {
  return {
    dedupeKey: `paylink:dev_${n}`,
    template: 'paylink',
    locale: 'en',
    to: [`shop${n}@merchant.test`],
    cc: n === 1 ? ['owner@merchant.test'] : [],
    data: {
      merchantName,
      reference: `DEV-${n}`,
      amountMinor: 4200,
      currency: 'EUR',
      description: '<script>alert(1)</script>',
      customerName: '',
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      link: LINK,
      toCustomer: false,
    },
  };
}

const CSV = 'record,at,reference\r\npayment,2031-02-27T10:00:00+01:00,A-1\r\n';

/** A daily recap: an inline chart (cid:) in the HTML and the day's CSV as an attachment. */
function recapRequest(): MailRequest {
  return {
    dedupeKey: 'recap:dev_1',
    template: 'daily-recap',
    locale: 'en',
    to: ['desk@merchant.test'],
    cc: [],
    data: {
      merchantName: 'Recap Shop',
      date: '2031-02-27',
      timeZone: 'Europe/Rome',
      payments: { totals: [], count: 0, items: [] },
      failed: { count: 0, items: [] },
      expired: { count: 0, items: [] },
      chart: { currency: 'EUR', days: [{ date: '2031-02-27', totalMinor: 12990, count: 1 }] },
      // A hostile name: quotes, a path and a header break must not reach Content-Disposition as is.
      csv: { filename: '../evil"\r\nX-Bad: 1.csv', content: CSV },
    },
  };
}

describe('/dev/mail', function () {
  this.timeout(20_000);
  useTestDatabase();
  let server: Server;
  let base = '';
  let sentId = '';
  let pendingId = '';
  let recapId = '';

  before(async () => {
    const renderer = await createMailRenderer({ templatesDir: path.resolve(import.meta.dirname, '../../templates'), publicUrl: 'http://localhost:3000' });
    const worker = createOutboxWorker({ repos,
      renderer,
      transport: createMailTransport({ production: false }),
      from: `paymail <no-reply@${DOMAIN}>`,
      logger: createLogger('silent'),
    });
    sentId = String((await enqueueMail(request(1, 'Shop <b>Bold</b>'), DOMAIN, repos.outbox))._id);
    recapId = String((await enqueueMail(recapRequest(), DOMAIN, repos.outbox))._id);
    assert.equal(await worker.runOnce(), 2);
    // Enqueued after the worker ran: still pending, and newer.
    const pending = await enqueueMail(request(2, 'Later Shop'), DOMAIN, repos.outbox);
    pendingId = String(pending._id);
    // Through the driver: mongoose treats createdAt as immutable.
    await Outbox.collection.updateOne({ _id: pending._id }, { $set: { createdAt: new Date(Date.now() + 1_000) } });

    const app = new Koa();
    app.use(devMailRouter({ repos }).routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('lists mails newest first with time, template, subject, recipients and status, escaped', async () => {
    const res = await fetch(`${base}/dev/mail`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await res.text();
    assert.ok(html.includes('Pay-link for order DEV-1'));
    assert.ok(html.includes('shop1@merchant.test') && html.includes('owner@merchant.test'));
    assert.ok(html.indexOf(`/dev/mail/${pendingId}`) < html.indexOf(`/dev/mail/${sentId}`), 'newest first');
    assert.match(html, /st-sent">sent</);
    assert.match(html, /st-pending">pending</);
    assert.match(html, /paylink/);
    assert.match(html, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  });

  it('shows one mail: subject, from, recipients, links, the HTML in a sandboxed iframe and the text part', async () => {
    const res = await fetch(`${base}/dev/mail/${sentId}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(html.includes('paymail &lt;no-reply@paymail.test&gt;'));
    assert.ok(html.includes('Shop &lt;b&gt;Bold&lt;/b&gt;'));
    assert.ok(!html.includes('<b>Bold</b>'));
    assert.ok(!html.includes('<script>alert'));
    assert.match(html, new RegExp(`<iframe src="/dev/mail/${sentId}/html" sandbox="[^"]*"`));
    assert.match(html, /<pre>[\s\S]*Forward this link to your customer[\s\S]*<\/pre>/);
    assert.ok(html.includes(`href="${LINK.replace(/&/g, '&amp;').replace(/=/g, '&#x3D;')}"`), 'pay-link is clickable');
  });

  it('serves the captured HTML with a script-blocking, sandboxing CSP and the QR inlined', async () => {
    const res = await fetch(`${base}/dev/mail/${sentId}/html`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src/);
    assert.match(csp, /sandbox/);
    const html = await res.text();
    assert.match(html, /<img[^>]+src="data:image\/png;base64,/);
    assert.ok(!html.includes('cid:'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  it('lists a mail\'s attachments with name, type, size and a download link, but not its inline images', async () => {
    const html = await (await fetch(`${base}/dev/mail/${recapId}`)).text();
    assert.match(html, /<h2>Attachments<\/h2>/);
    const href = new RegExp(`href="(/dev/mail/${recapId}/attachments/[^"]+)"`).exec(html)?.[1];
    assert.ok(href, 'a download link');
    assert.match(html, /text\/csv/);
    assert.ok(html.includes(`${Buffer.byteLength(`\uFEFF${CSV}`)} bytes`), 'the size');
    assert.ok(!html.includes('recap-chart-2031-02-27.png'), 'the inline chart is not a download');
    // The chart is still inlined into the HTML part.
    assert.match(await (await fetch(`${base}/dev/mail/${recapId}/html`)).text(), /src="data:image\/png;base64,/);

    const res = await fetch(`${base}${href.replace(/&amp;/g, '&')}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/csv; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const disposition = res.headers.get('content-disposition') ?? '';
    assert.match(disposition, /^attachment; filename="[^"/\\\r\n]+\.csv"/);
    assert.ok(!disposition.includes('..') && !disposition.includes('/'), disposition);
    assert.equal(Buffer.from(await res.arrayBuffer()).toString('utf8'), `\uFEFF${CSV}`);
  });

  it('lists no attachments for a mail without any', async () => {
    assert.doesNotMatch(await (await fetch(`${base}/dev/mail/${sentId}`)).text(), /<h2>Attachments<\/h2>/);
  });

  const missing: Array<[string, string]> = [
    ['an id that is not an ObjectId', '/dev/mail/nope'],
    ['an unknown id', '/dev/mail/0123456789abcdef01234567'],
    ['the HTML of an unknown id', '/dev/mail/0123456789abcdef01234567/html'],
    ['an attachment of an unknown id', '/dev/mail/0123456789abcdef01234567/attachments/0'],
    ['an inline image asked for as an attachment', '/dev/mail/RECAP/attachments/0'],
    ['an attachment index out of range', '/dev/mail/RECAP/attachments/7'],
    ['an attachment index that is not a number', '/dev/mail/RECAP/attachments/x'],
  ];
  for (const [name, url] of missing) {
    it(`answers 404 for ${name}`, async () => {
      const res = await fetch(`${base}${url.replace('RECAP', recapId)}`);
      assert.equal(res.status, 404);
      await res.text();
    });
  }

  it('shows a pending mail without HTML and answers 404 for its HTML', async () => {
    const page = await fetch(`${base}/dev/mail/${pendingId}`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /not rendered this mail yet/);
    const res = await fetch(`${base}/dev/mail/${pendingId}/html`);
    assert.equal(res.status, 404);
    await res.text();
  });
});
