// The merchant's own look in a real browser (issue 13 part 6): an admin sets an accent colour and
// uploads a logo through the settings form, then the customer's checkout shows both and axe finds
// no WCAG 2.1 AA violation — colour contrast included — for a light, a mid-grey and a dark accent.
// Screenshots of the branded checkout go to test-output/screenshots/.
import { AxeBuilder } from '@axe-core/playwright';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PNG } from 'pngjs';
import { type Page } from 'playwright-core';
import { SHOTS, useE2eBrowser } from '../helpers/e2e-app.ts';

const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/** A 240 × 80 logo: a navy bar on a transparent ground. */
function logoPng(): Buffer {
  const img = new PNG({ width: 240, height: 80 });
  for (let y = 0; y < 80; y++) {
    for (let x = 0; x < 240; x++) {
      const inside = y > 20 && y < 60 && x > 16 && x < 224;
      img.data.set(inside ? [0x14, 0x21, 0x3d, 0xff] : [0, 0, 0, 0], (y * 240 + x) * 4);
    }
  }
  return PNG.sync.write(img);
}

describe('e2e: the merchant’s look on the checkout', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'B&B Il Glicine', email: 'info@glicine.example' });
  let n = 0;

  async function payLink(): Promise<string> {
    const reference = `GL-${Date.now()}-${++n}`;
    await e2e.mailAsMerchant(`Booking ${reference}`, `Amount: 129,90 €\nReference: ${reference}\nDescription: Garden room, 2 nights\n`);
    const mail = await e2e.sink.waitFor((m) => (m.parsed.text ?? '').includes(reference) && /\/pay\//.test(m.parsed.text ?? ''));
    return /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!;
  }

  async function setLook(page: Page, accent: string, logo: boolean) {
    await page.goto(`${e2e.base}/backoffice/settings`);
    await page.getByLabel(/Accent colour/).fill(accent);
    if (logo) await page.getByLabel(/^Logo/).setInputFiles({ name: 'glicine.png', mimeType: 'image/png', buffer: logoPng() });
    await page.getByRole('button', { name: 'Save the look' }).click();
    await page.waitForLoadState();
    assert.match(page.url(), /done=brandSaved/);
    assert.match((await page.getByRole('status').textContent()) ?? '', /Your look was saved/);
  }

  async function assertAccessible(page: Page) {
    const results = await new AxeBuilder({ page }).withTags(WCAG_AA).analyze();
    const found = [...results.violations, ...results.incomplete.filter((r) => r.id !== 'color-contrast' || r.nodes.some((x) => !x.target.join(' ').includes('brand-mark')))];
    assert.equal(found.length, 0, found.map((v) => `${v.id}: ${v.help} ${v.nodes.map((x) => x.target.join(' ')).join(', ')}`).join('\n'));
  }

  it('an admin uploads a logo and picks colours; each checkout shows them and stays accessible', async () => {
    const admin = await (await e2e.browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    await admin.goto(`${e2e.base}/backoffice/login`);
    await admin.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
    await admin.getByLabel('Password').fill(e2e.merchant.adminPassword);
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.waitForLoadState();

    for (const [i, accent] of (['#ffd700', '#777777', '#14213d'] as const).entries()) {
      await setLook(admin, accent, i === 0);
      // A new order each time: the checkout keeps a merchant's settings for a few seconds.
      await new Promise((r) => setTimeout(r, 5_100));
      const ctx = await e2e.browser.newContext({ viewport: { width: 900, height: 1000 } });
      try {
        const page = await ctx.newPage();
        await page.goto(await payLink());
        const pay = page.getByRole('button', { name: /^Pay / });
        await pay.waitFor();
        const logo = page.locator('.merchant-logo img');
        assert.equal(await logo.count(), 1);
        // (Evaluated in the page; the tests are type-checked without the DOM library.)
        assert.equal(await logo.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).naturalWidth), 240, 'the logo loaded');
        const bg = await pay.evaluate((b) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(b).backgroundColor);
        const hex = `#${(bg.match(/\d+/g) ?? []).slice(0, 3).map((v: string) => Number(v).toString(16).padStart(2, '0')).join('')}`;
        assert.equal(hex, accent, 'the Pay button wears the accent');
        await assertAccessible(page);
        await page.screenshot({ path: path.join(SHOTS, `checkout-branded-${accent.slice(1)}.png`), fullPage: true });
      } finally {
        await ctx.close();
      }
    }
  });
});
