// The merchant's look in its customers' mails and on the PDF receipt (issue 13 part 6): the
// button in the accent with a text colour that keeps 4.5:1, the logo above the merchant's name
// (an absolute URL on paymail's site), the PDF with the accent band and the logo image; mails of
// merchants without a look keep paymail's colours. Checked on the rendered HTML and, for the
// PDF, with poppler's pdfimages and pdftotext.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { contrastRatio } from '../../src/domain/brand.ts';
import { AppError } from '../../src/domain/errors.ts';
import { validateMailData } from '../../src/mail/contracts.ts';
import { createMailRenderer, MAIL_TEMPLATES, type MailRenderer } from '../../src/mail/renderer.ts';
import { TEMPLATES_DIR } from '../../src/paths.ts';
import { pdfText } from '../helpers/pdf-tools.ts';

const run = promisify(execFile);
const SHA = 'a'.repeat(64);
const LOGO_PATH = `/brand/mer_glicine/logo-${SHA}.png`;

function png(width: number, height: number): Buffer {
  const img = new PNG({ width, height });
  for (let i = 0; i < img.data.length; i += 4) img.data.set([0x14, 0x21, 0x3d, 0xff], i);
  return PNG.sync.write(img);
}

const paylink = (brand?: Record<string, unknown>) => ({
  merchantName: 'B&B Il Glicine',
  reference: 'GL-7',
  amountMinor: 12990,
  currency: 'EUR',
  expiresAt: '2031-03-01T17:30:00.000Z',
  link: 'https://pay.example.test/pay/abc?e=1&s=x',
  toCustomer: true,
  ...(brand ? { brand } : {}),
});
const receipt = (brand?: Record<string, unknown>) => ({
  receiptNumber: 'RCPT-GL7',
  merchantName: 'B&B Il Glicine',
  reference: 'GL-7',
  amountMinor: 12990,
  currency: 'EUR',
  card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2031 },
  authCode: 'AUTH42',
  paidAt: '2031-02-10T09:15:00.000Z',
  ...(brand ? { brand } : {}),
});

/** The inline style of the pay-link's button cell (MJML puts the colours there). */
function buttonColours(html: string): { background: string; text: string } {
  const td = /<td\s+align="center" bgcolor="(#[0-9a-f]{6})" role="presentation" style="[^"]*background:(#[0-9a-f]{6});/.exec(html);
  const a = /<a\s+href="[^"]*" style="display:inline-block;background:(#[0-9a-f]{6});color:(#[0-9a-f]{6});/.exec(html);
  assert.ok(td && a, 'the button is found');
  assert.equal(td[1], td[2]);
  assert.equal(a[1], td[1]);
  return { background: td[1]!, text: a[2]! };
}

describe('mail branding', () => {
  let renderer: MailRenderer;
  const asked: string[] = [];
  before(async () => {
    renderer = await createMailRenderer({
      templatesDir: TEMPLATES_DIR,
      publicUrl: 'https://pay.example.test/',
      logos: async (p) => {
        asked.push(p);
        return p === LOGO_PATH ? png(300, 100) : null;
      },
    });
  });

  it('without a look: paymail’s indigo button with white text, no logo, no placeholder colour left', async () => {
    const mail = await renderer.render({ template: 'paylink', locale: 'en', data: paylink() });
    assert.deepEqual(buttonColours(mail.html), { background: '#4338ca', text: '#ffffff' });
    assert.doesNotMatch(mail.html, /\/brand\//);
    assert.doesNotMatch(mail.html, /#4338cb|#fffffe/);
  });

  it('a gold accent: the button is gold with dark text (≥ 4.5:1) and the logo heads the mail', async () => {
    const mail = await renderer.render({ template: 'paylink', locale: 'it', data: paylink({ accent: '#ffd700', logoPath: LOGO_PATH, logoWidth: 144, logoHeight: 48 }) });
    const c = buttonColours(mail.html);
    assert.equal(c.background, '#ffd700');
    assert.ok(contrastRatio(c.background, c.text) >= 4.5, `${c.text} on ${c.background}`);
    // Decorative (the merchant's name follows as text), absolute, sized.
    assert.match(mail.html, new RegExp(`<img src="https://pay\\.example\\.test${LOGO_PATH}" alt="" width="144" height="48"`));
    const name = /letter-spacing:0\.01em[^>]*>B&amp;B Il Glicine/.exec(mail.html);
    assert.ok(name && mail.html.indexOf(LOGO_PATH) < name.index, 'logo above the name');
  });

  it('the placeholder colours are the buttons’ alone (else the accent would paint something else too)', async () => {
    const dir = path.join(TEMPLATES_DIR, 'mail');
    for (const file of [...MAIL_TEMPLATES.map((t) => `${t}.mjml`), ...(await readdir(path.join(dir, 'partials'))).map((f) => `partials/${f}`)]) {
      const source = await readFile(path.join(dir, file), 'utf8');
      const uses = (source.match(/#4338cb|#fffffe/gi) ?? []).length;
      assert.equal(uses, file === 'partials/head.mjml' ? 2 : 0, file);
    }
    const reminder = await renderer.render({ template: 'reminder', locale: 'de', data: { ...paylink({ accent: '#006400' }), toCustomer: undefined } });
    assert.equal(buttonColours(reminder.html).background, '#006400');
  });

  it('brand data that is not a colour or a paymail logo path is refused when the mail is queued', () => {
    for (const brand of [{ accent: 'red' }, { logoPath: 'https://evil.example/x.png', logoWidth: 10, logoHeight: 10 }, { accent: '#ffd700', logoWidth: 999 }]) {
      assert.throws(() => validateMailData('paylink', paylink(brand)), (e: unknown) => e instanceof AppError && e.code === 'MAIL_DATA_INVALID', JSON.stringify(brand));
    }
  });

  it('the PDF receipt carries the logo image and still reads the same', async () => {
    const plain = (await renderer.receiptPdf({ locale: 'en', data: receipt() })).content;
    const branded = (await renderer.receiptPdf({ locale: 'en', data: receipt({ accent: '#ffd700', logoPath: LOGO_PATH, logoWidth: 144, logoHeight: 48 }) })).content;
    assert.ok(asked.includes(LOGO_PATH));
    const images = async (pdf: Buffer) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-brand-'));
      try {
        await writeFile(path.join(dir, 'r.pdf'), pdf);
        const { stdout } = await run('pdfimages', ['-list', path.join(dir, 'r.pdf')]);
        // Columns: page num type width height …; a PNG's alpha channel is listed as its 'smask'.
        return stdout.split('\n').slice(2).filter((l) => l.trim()).map((l) => l.trim().split(/\s+/)).filter((c) => c[2] === 'image');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    assert.equal((await images(plain)).length, 0);
    const found = await images(branded);
    assert.equal(found.length, 1, 'one image: the logo');
    assert.deepEqual([found[0]![3], found[0]![4]], ['300', '100'], 'the logo at its own resolution');
    const text = await pdfText(branded);
    assert.match(text, /B&B Il Glicine/);
    assert.match(text, /RCPT-GL7/);
    // A logo the loader cannot find leaves a receipt without it, not a failed mail.
    const { content: missing } = await renderer.receiptPdf({ locale: 'en', data: receipt({ logoPath: `/brand/mer_x/logo-${'b'.repeat(64)}.png`, logoWidth: 10, logoHeight: 10 }) });
    assert.equal((await images(missing)).length, 0);
  });
});
