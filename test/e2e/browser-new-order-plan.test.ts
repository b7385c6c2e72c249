// The back office's New pay-link form with a payment plan (issue 13 part 1) in a real browser
// (the back office sends no script of its own): the plan fields are reachable by their labels, a refused plan shows its message
// next to the field (described by it, marked invalid), axe finds no WCAG 2.1 AA violation on the
// form, empty or with errors, and a corrected plan creates the order.
import { AxeBuilder } from '@axe-core/playwright';
import assert from 'node:assert/strict';
import { type Page } from 'playwright-core';
import { useE2eBrowser } from '../helpers/e2e-app.ts';

const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

describe('e2e: a pay-link with a payment plan from the back-office form', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Cucine Rossi', email: 'ufficio@cucine.example' });

  async function assertAccessible(page: Page) {
    const results = await new AxeBuilder({ page }).withTags(WCAG_AA).analyze();
    const found = [...results.violations, ...results.incomplete.filter((r) => r.id !== 'color-contrast')];
    assert.equal(found.length, 0, found.map((v) => `${v.id}: ${v.help} ${v.nodes.map((x) => x.target.join(' ')).join(', ')}`).join('\n'));
  }

  it('refuses a deposit of 120% next to the field, accessibly, then creates the order with 30%', async () => {
    // axe runs as a script in the page, so JavaScript stays on; the back office sends none of its own.
    const ctx = await e2e.browser.newContext({ viewport: { width: 1200, height: 1000 } });
    try {
      const page = await ctx.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(`${e2e.base}/backoffice/login`);
      await page.getByLabel('E-mail').fill(e2e.merchant.adminEmail);
      await page.getByLabel('Password').fill(e2e.merchant.adminPassword);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForLoadState();
      await page.goto(`${e2e.base}/backoffice/orders/new`);
      await assertAccessible(page);

      await page.getByLabel('Amount').fill('1.000,00');
      await page.getByLabel('Reference').fill('KITCHEN-E2E');
      await page.getByLabel('Deposit').fill('120%');
      // A past balance date the browser itself refuses (min is the merchant's today); the server refuses it too (integration tests).
      await page.getByLabel('Instalments', { exact: true }).fill('3');
      await page.getByRole('button', { name: 'Create the pay-link' }).click();
      await page.waitForLoadState();
      const deposit = page.getByLabel('Deposit');
      assert.equal(await deposit.getAttribute('aria-invalid'), 'true');
      assert.equal(await deposit.inputValue(), '120%', 'what was typed is kept');
      // The accessible description starts with the message, then the hint.
      const ids = ((await deposit.getAttribute('aria-describedby')) ?? '').split(' ');
      const described = (await Promise.all(ids.map((id) => page.locator(`[id="${id}"]`).textContent()))).join(' | ');
      assert.match(described, /^Deposit: a share from 1% to 99%.* \| A share such as 30%/);
      assert.equal(await page.getByLabel('Instalments', { exact: true }).getAttribute('aria-invalid'), null, 'only the deposit is at fault so far');
      assert.match((await page.getByRole('alert').first().textContent()) ?? '', /Deposit: a share from 1% to 99%/);
      await assertAccessible(page);

      // 30% with instalments: a plan conflict, shown at the instalments.
      await deposit.fill('30%');
      await page.getByRole('button', { name: 'Create the pay-link' }).click();
      await page.waitForLoadState();
      assert.equal(await page.getByLabel('Instalments', { exact: true }).getAttribute('aria-invalid'), 'true');
      assert.equal(await page.getByLabel('Deposit').getAttribute('aria-invalid'), null);
      await assertAccessible(page);

      await page.getByLabel('Instalments', { exact: true }).fill('');
      await page.getByRole('button', { name: 'Create the pay-link' }).click();
      await page.waitForLoadState();
      assert.match(page.url(), /\/backoffice\/orders\/ord_[\w-]+\?done=created/);
    } finally {
      await ctx.close();
    }
  });
});
