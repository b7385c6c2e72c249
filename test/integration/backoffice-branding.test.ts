// The merchant's own look (issue 13 part 6): an admin sets an accent colour and uploads a logo in
// the settings (multipart, checked by its bytes), the checkout shows both, and the colours chosen
// for text keep WCAG contrast whatever the accent.
import assert from 'node:assert/strict';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { brandColours, contrastRatio } from '../../src/domain/brand.ts';
import { createMerchantAdminService } from '../../src/services/merchant-admin.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, type BackofficeApp } from './backoffice-client.ts';

function png(width: number, height: number): Buffer {
  const img = new PNG({ width, height });
  for (let i = 0; i < img.data.length; i += 4) img.data.set([0xb3, 0x26, 0x1e, 0xff], i);
  return PNG.sync.write(img);
}
function jpg(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4, 0x80);
  return Buffer.from(jpeg.encode({ data, width, height }, 80).data);
}

describe('back office: the merchant’s look', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let admin: BoClient;
  let viewer: BoClient;
  let payLink = '';
  let plainLink = '';

  /** Posts the branding form as a browser does (multipart/form-data), with the page's CSRF token. */
  async function postBrand(client: BoClient, fields: Record<string, string>, file?: { bytes: Buffer; name: string; type: string }) {
    await client.get('/backoffice/settings');
    const form = new FormData();
    form.set('_csrf', fields['_csrf'] ?? client.csrf);
    for (const [k, v] of Object.entries(fields)) if (k !== '_csrf') form.set(k, v);
    if (file) form.set('logo', new Blob([file.bytes], { type: file.type }), file.name);
    const res = await fetch(`${app.base}/backoffice/settings/branding`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
      body: form,
    });
    return { status: res.status, location: res.headers.get('location') ?? '', html: await res.text() };
  }

  const fresh = async () => (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;

  before(async () => {
    app = await startBackofficeApp();
    const service = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const m = await service.create({ name: 'B&B Il Glicine', email: 'info@glicine.example', locale: 'en', timezone: 'Europe/Rome' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    admin = new BoClient(app.base);
    assert.equal((await admin.login(m.adminEmail, m.adminPassword)).status, 303);
    const v = await createMerchantAdminService({ repos, maxLinkLifetimeDays: 60 }).addUser(merchant, 'viewer@glicine.example', 'viewer');
    viewer = new BoClient(app.base);
    assert.equal((await viewer.login(v.user.email, v.password)).status, 303);
    payLink = (await app.orders.create(merchant, { amountMinor: 12_990, currency: 'EUR', reference: 'GL-1' }, { key: 'gl:1' })).link;
    // Another merchant that never chooses a look (the checkout keeps a merchant for up to 5 s, so
    // the branded one's pages are first opened after its look is set).
    const other = await service.create({ name: 'Hotel Plain', email: 'desk@plain.example', locale: 'en', timezone: 'Europe/Rome' });
    const plain = (await Merchant.findById(other.id).lean<MerchantDoc>())!;
    plainLink = (await app.orders.create(plain, { amountMinor: 5_000, currency: 'EUR', reference: 'PL-1' }, { key: 'pl:1' })).link;
  });
  after(() => app?.close());

  it('without a choice the checkout has paymail’s look: no theme, no logo', async () => {
    const html = await (await fetch(plainLink)).text();
    assert.match(html, /Hotel Plain/);
    assert.doesNotMatch(html, /\/brand\//);
  });

  it('an accent and a PNG logo: stored, shown in the settings, served by their hash', async () => {
    const logo = png(300, 100);
    const r = await postBrand(admin, { accent: '#FFD700' }, { bytes: logo, name: 'logo.png', type: 'image/png' });
    assert.equal(r.status, 303, r.html);
    assert.equal(r.location, '/backoffice/settings?done=brandSaved');
    const m = await fresh();
    assert.equal(m.branding?.accent, '#ffd700');
    assert.equal(m.branding?.logo?.type, 'image/png');
    assert.equal(m.branding?.logo?.width, 300);
    const settings = await admin.get('/backoffice/settings');
    assert.match(settings.html, /value="#ffd700"/);
    const src = /<img class="brand-logo" src="([^"]+)"/.exec(settings.html)?.[1];
    assert.ok(src, 'the current logo is shown');
    assert.match(src!, /^\/brand\/[^/]+\/logo-[0-9a-f]{64}\.png$/);
    const served = await fetch(`${app.base}${src}`);
    assert.equal(served.status, 200);
    assert.equal(served.headers.get('content-type'), 'image/png');
    assert.equal(served.headers.get('x-content-type-options'), 'nosniff');
    assert.match(served.headers.get('cache-control') ?? '', /immutable/);
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), logo);
    // Another hash, or the right hash under the other type, finds nothing.
    assert.equal((await fetch(`${app.base}${src!.replace(/logo-[0-9a-f]{8}/, 'logo-00000000')}`)).status, 404);
    assert.equal((await fetch(`${app.base}${src!.replace(/\.png$/, '.jpg')}`)).status, 404);
  });

  it('the checkout shows the logo (48 px high) and links the accent’s stylesheet, whose colours keep 4.5:1', async () => {
    const html = await (await fetch(payLink)).text();
    assert.match(html, /<link rel="stylesheet" href="\/brand\/theme\/ffd700\.css">/);
    // Decorative: the merchant's name is in the text beside it.
    assert.match(html, /<p class="merchant-logo"><img src="\/brand\/[^"]+\.png" alt="" width="144" height="48"><\/p>/);
    const css = await fetch(`${app.base}/brand/theme/ffd700.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    const vars = Object.fromEntries([...(await css.text()).matchAll(/--([\w-]+): (#[0-9a-f]{6});/g)].map((m) => [m[1], m[2]]));
    assert.equal(vars['accent'], '#ffd700');
    assert.ok(contrastRatio(vars['accent']!, vars['on-accent']!) >= 4.5, 'text on the gold button');
    assert.ok(contrastRatio(vars['accent-dark']!, vars['on-accent']!) >= 4.5, 'text on the hovered button');
    assert.ok(contrastRatio(vars['accent-text']!, '#ffffff') >= 4.5, 'links on white');
    assert.equal((await fetch(`${app.base}/brand/theme/xyz.css`)).status, 404);
  });

  it('the pay-link mail and the receipts of the merchant’s orders carry its look', async () => {
    const m = await fresh();
    const { order } = await app.orders.create(m, { amountMinor: 4_500, currency: 'EUR', reference: 'GL-2', customerEmail: 'anna@example.org' }, { key: 'gl:2' });
    const link = (await Outbox.findOne({ orderId: order._id, template: 'paylink' }).lean())!;
    const expected = { accent: '#ffd700', logoPath: `/brand/${merchant._id}/logo-${m.branding!.logo!.sha256}.png`, logoWidth: 144, logoHeight: 48 };
    assert.deepEqual((link.data as { brand?: unknown }).brand, expected);
    assert.equal((await app.checkout.pay({ order, merchant: m }, { number: '4242424242424242', expiry: '12/39', cvc: '123', holder: 'Anna Rossi' }, '127.0.0.9')).kind, 'paid');
    const receipts = await Outbox.find({ orderId: order._id, template: /^receipt-/ }).lean();
    assert.equal(receipts.length, 2);
    for (const r of receipts) assert.deepEqual((r.data as { brand?: unknown }).brand, expected);
  });

  it('a JPEG replaces the PNG; the old URL is gone', async () => {
    const before = (await fresh()).branding!.logo!.sha256!;
    const r = await postBrand(admin, { accent: '#ffd700' }, { bytes: jpg(64, 64), name: 'logo.jpeg', type: 'image/jpeg' });
    assert.equal(r.status, 303, r.html);
    const m = await fresh();
    assert.equal(m.branding?.logo?.type, 'image/jpeg');
    assert.notEqual(m.branding?.logo?.sha256, before);
    assert.equal((await fetch(`${app.base}/brand/${merchant._id}/logo-${before}.png`)).status, 404);
    assert.equal((await fetch(`${app.base}/brand/${merchant._id}/logo-${m.branding!.logo!.sha256}.jpg`)).headers.get('content-type'), 'image/jpeg');
  });

  const refusals: Array<{ name: string; fields: Record<string, string>; file?: { bytes: Buffer; name: string; type: string }; says: RegExp[] }> = [
    { name: 'an SVG (it can carry scripts), even sent as image/png', fields: { accent: '' }, file: { bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), name: 'logo.png', type: 'image/png' }, says: [/must be a PNG or JPEG image/] },
    { name: 'a GIF', fields: { accent: '' }, file: { bytes: Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;', 'latin1'), name: 'logo.gif', type: 'image/gif' }, says: [/must be a PNG or JPEG image/] },
    { name: 'a logo over 256 KB', fields: { accent: '' }, file: { bytes: Buffer.concat([png(300, 100), Buffer.alloc(300 * 1024)]), name: 'big.png', type: 'image/png' }, says: [/larger than 256 KB/] },
    { name: 'a logo of 10 × 10 pixels', fields: { accent: '' }, file: { bytes: png(10, 10), name: 'tiny.png', type: 'image/png' }, says: [/16 to 2000 pixels/] },
    { name: 'a colour that is not one, with a bad logo: both named', fields: { accent: 'gold' }, file: { bytes: Buffer.from('not an image'), name: 'x.png', type: 'image/png' }, says: [/written like #1f5eff/, /must be a PNG or JPEG image/] },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name} (422, named, nothing changed)`, async () => {
      const before = await fresh();
      const r = await postBrand(admin, c.fields, c.file);
      assert.equal(r.status, 422);
      for (const s of c.says) assert.match(r.html, s);
      const after = await fresh();
      assert.deepEqual(after.branding, before.branding);
    });
  }

  it('only an admin may change the look, and only with the form’s CSRF token', async () => {
    const before = await fresh();
    assert.equal((await postBrand(viewer, { accent: '#000000' })).status, 403);
    assert.equal((await postBrand(admin, { accent: '#000000', _csrf: 'forged' })).status, 403);
    assert.deepEqual((await fresh()).branding, before.branding);
  });

  it('removing the logo and emptying the colour go back to paymail’s look', async () => {
    const sha = (await fresh()).branding!.logo!.sha256!;
    assert.equal((await postBrand(admin, { accent: '', removeLogo: '1' })).status, 303);
    const m = await fresh();
    assert.equal(m.branding?.accent ?? undefined, undefined);
    assert.equal(m.branding?.logo ?? undefined, undefined);
    assert.equal((await fetch(`${app.base}/brand/${merchant._id}/logo-${sha}.jpg`)).status, 404);
    const settings = await admin.get('/backoffice/settings');
    assert.doesNotMatch(settings.html, /class="brand-logo"/);
    assert.match(settings.html, /id="accent"[^>]*value=""/);
  });

  it('every accent gets text colours of at least 4.5:1 (all 4,096 colours of #rgb)', () => {
    for (let i = 0; i < 4096; i++) {
      const hex = `#${[i >> 8, (i >> 4) & 15, i & 15].map((x) => (x * 17).toString(16).padStart(2, '0')).join('')}`;
      const c = brandColours(hex);
      assert.ok(contrastRatio(c.accent, c.onAccent) >= 4.5, hex);
      assert.ok(contrastRatio(c.accentHover, c.onAccent) >= 4.5, hex);
      assert.ok(contrastRatio(c.accentText, '#ffffff') >= 4.5, hex);
    }
    // Reference values from the WCAG 2.2 definition: black on white 21:1, #777 on white 4.48:1.
    assert.equal(contrastRatio('#000000', '#ffffff'), 21);
    assert.equal(Math.round(contrastRatio('#777777', '#ffffff') * 100) / 100, 4.48);
  });
});
