// The PDF receipt downloaded again over real HTTP: from the checkout's receipt page (only with the
// signed pay-link of a paid order) and from the back office's order detail (only for the
// merchant's own users). The download is the very document the receipt mail carries.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox, type OutboxDoc } from '../../src/db/models/outbox.model.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { createReceiptProofs } from '../../src/services/receipt-proof.service.ts';
import { createReceiptKeyRing } from '../../src/services/signing-keys.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { pdfQrCodes, pdfText, savePdfPage, squash } from '../helpers/pdf-tools.ts';
import { SHOTS } from '../helpers/e2e-app.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, type BackofficeApp } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const nextYear = String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0');
const unescape = (s: string) => s.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');

describe('PDF receipt downloads', function () {
  this.timeout(90_000);
  useTestDatabase();
  const ring = createReceiptKeyRing(generateKeyPairSync('ed25519').privateKey);
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let admin: BoClient;
  let stranger: BoClient;
  let paid: OrderDoc;
  let paidLink: string;
  let pendingLink: string;
  let pending: OrderDoc;
  let mailedPdf: Buffer;

  before(async () => {
    app = await startBackofficeApp({ receiptKeys: ring });
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const m = await merchants.create({ name: 'Caffè Però', email: 'cassa@pero.example', locale: 'it', timezone: 'Europe/Rome' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
    const other = await merchants.create({ name: 'Other Shop', email: 'other@shop.example' });
    stranger = new BoClient(app.base);
    assert.equal((await stranger.login(other.adminEmail, other.adminPassword)).status, 303);

    const r = await app.orders.create(merchant, { amountMinor: 123456, currency: 'EUR', reference: 'PDF-1', description: 'Due sedie', customerEmail: 'anna@example.org' }, { key: 'pdf:1' });
    const result = await app.checkout.pay({ order: r.order, merchant }, { number: '4242 4242 4242 4242', expiry: `09/${nextYear}`, cvc: '123', holder: 'Anna Rossi' }, '127.0.0.1');
    assert.equal(result.kind, 'paid');
    paid = result.kind === 'paid' ? result.order : r.order;
    paidLink = r.link;
    const p = await app.orders.create(merchant, { amountMinor: 5000, currency: 'EUR', reference: 'PDF-2' }, { key: 'pdf:2' });
    pending = p.order;
    pendingLink = p.link;

    // The merchant's receipt mail as the outbox worker renders it (Italian, the merchant's locale).
    const queued = (await Outbox.findOne({ dedupeKey: `receipt:${paid._id}:merchant` }).lean<OutboxDoc>())!;
    const mail = await (await createMailRenderer({ templatesDir: path.resolve('templates'), publicUrl: app.base })).render({
      template: queued.template,
      locale: queued.locale,
      data: queued.data as Record<string, unknown>,
    });
    mailedPdf = mail.attachments.find((a) => a.contentType === 'application/pdf')!.content;
  });
  after(() => app?.close());

  /** The pay-link's PDF address: the same signed query on /pay/<id>/receipt.pdf. */
  const pdfUrlOf = (link: string) => {
    const u = new URL(link);
    u.pathname = `${u.pathname}/receipt.pdf`;
    return u.toString();
  };

  function assertPdfResponse(res: Response, body: Buffer) {
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    assert.equal(res.headers.get('content-disposition'), `attachment; filename="receipt-${paid.payment!.receiptNumber}.pdf"`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(body.subarray(0, 5).toString('latin1'), '%PDF-');
  }

  describe('checkout receipt page', () => {
    it('links "Download receipt (PDF)"; the link serves the receipt in the page language', async () => {
      const page = await fetch(paidLink, { headers: { 'accept-language': 'en' } });
      const html = unescape(await page.text());
      const href = /<a [^>]*href="([^"]+)"[^>]*>Download receipt \(PDF\)<\/a>/.exec(html)?.[1];
      assert.ok(href, 'the receipt page links the PDF');
      const res = await fetch(new URL(href, app.base), { headers: { 'accept-language': 'en' } });
      const body = Buffer.from(await res.arrayBuffer());
      assertPdfResponse(res, body);
      const text = squash(await pdfText(body));
      for (const s of ['Payment receipt', 'Caffè Però', 'cassa@pero.example', 'PDF-1', '€1,234.56', 'Visa •••• 4242', paid.payment!.receiptNumber!, paid.payment!.authCode!, 'Europe/Rome']) {
        assert.ok(text.includes(s), `"${s}" not in the PDF:\n${text}`);
      }
      const codes = await pdfQrCodes(body);
      assert.equal(codes.length, 1);
      // The PDF receipt's page as a person sees it, saved beside the browser tests' screenshots (A4 portrait).
      const shot = await savePdfPage(body, path.join(SHOTS, 'receipt-pdf.png'));
      assert.ok(shot.height > shot.width && shot.width > 800, `page image ${shot.width}×${shot.height}`);
      const proofs = createReceiptProofs({ keys: ring, publicUrl: app.base });
      const verified = proofs.verify(new URL(codes[0]!).searchParams.get('token') ?? '');
      assert.ok(verified.ok && verified.claims.receiptNumber === paid.payment!.receiptNumber, 'the QR code holds a valid proof');
    });

    it('in the mail language it is byte for byte the PDF the receipt mail carries', async () => {
      const url = new URL(pdfUrlOf(paidLink));
      url.searchParams.set('lang', 'it');
      const res = await fetch(url);
      const body = Buffer.from(await res.arrayBuffer());
      assertPdfResponse(res, body);
      assert.ok(body.equals(mailedPdf), 'download and mail attachment differ');
    });

    const refused: Array<[string, () => string]> = [
      ['an unpaid order', () => pdfUrlOf(pendingLink)],
      ['a forged signature', () => pdfUrlOf(paidLink).replace(/([?&]s=)([^&]{4})/, '$1AAAA')],
      ['another order\'s signed query', () => pdfUrlOf(paidLink).replace(paid.publicId, pending.publicId)],
      ['no signature at all', () => pdfUrlOf(paidLink).split('?')[0]!],
      ['an unknown order', () => pdfUrlOf(paidLink).replace(paid.publicId, 'ZZZZZZZZZZZZZZZZZZZZ')],
    ];
    for (const [name, url] of refused) {
      it(`404 for ${name}`, async () => {
        const res = await fetch(url());
        assert.equal(res.status, 404);
        assert.notEqual(res.headers.get('content-type'), 'application/pdf');
      });
    }
  });

  describe('back office order detail', () => {
    const pdfPath = (o: OrderDoc) => `/backoffice/orders/${encodeURIComponent(o._id)}/receipt.pdf`;

    it('a paid order links its receipt PDF; an unpaid one does not', async () => {
      const detail = await admin.get(`/backoffice/orders/${encodeURIComponent(paid._id)}`);
      assert.equal(detail.status, 200);
      assert.match(detail.html, new RegExp(`<a [^>]*href="${pdfPath(paid).replace(/[.$]/g, '\\$&')}"[^>]*>Scarica la ricevuta \\(PDF\\)</a>`));
      const open = await admin.get(`/backoffice/orders/${encodeURIComponent(pending._id)}`);
      assert.equal(open.status, 200);
      assert.ok(!open.html.includes('receipt.pdf'));
    });

    it('serves the merchant-language PDF, the same as the mailed one', async () => {
      const res = await fetch(`${app.base}${pdfPath(paid)}`, { headers: { cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      const body = Buffer.from(await res.arrayBuffer());
      assertPdfResponse(res, body);
      assert.ok(body.equals(mailedPdf));
      assert.ok(squash(await pdfText(body)).includes('Ricevuta di pagamento'));
    });

    it('asks to log in first', async () => {
      const res = await new BoClient(app.base).get(pdfPath(paid));
      assert.equal(res.status, 303);
      assert.match(res.location, /^\/backoffice\/login\?next=/);
    });

    it('404 for an unpaid order and for another merchant\'s order', async () => {
      assert.equal((await admin.get(pdfPath(pending))).status, 404);
      const foreign = await stranger.get(pdfPath(paid));
      assert.equal(foreign.status, 404);
      assert.notEqual(foreign.headers.get('content-type'), 'application/pdf');
    });
  });
});
