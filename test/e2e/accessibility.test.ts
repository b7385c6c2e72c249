// The customer-facing pages checked with axe-core (WCAG 2.0 and 2.1, levels A and AA) in Debian's
// Chromium, as the outside accessibility checkers see them: the start page, the checkout (English
// and Italian, without its script, a declined card, field errors, a deposit with its schedule), the
// receipt page of a deposit with its balance to follow, the 3-D Secure page, the
// expired page (its "Ask for a new link" form and the request sent), the stop-reminders page and its
// confirmation, the cancelled, paid and suspended-merchant pages and the receipt verify page. Every page
// must have no violation.
import { AxeBuilder } from '@axe-core/playwright';
import assert from 'node:assert/strict';
import { type Page } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Order } from '../../src/db/models/order.model.ts';
import { Merchant } from '../../src/db/models/merchant.model.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { remindersOffUrl } from '../../src/domain/reminder-link.ts';
import { fillCheckoutCard, useE2eBrowser, type E2eMerchant } from '../helpers/e2e-app.ts';
import { runCli } from '../helpers/paymail-process.ts';
import { startStripeStandIn, type StripeStandIn } from '../helpers/stripe-stand-in.ts';

const WCAG_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

describe('e2e: accessibility of the customer pages (axe, WCAG 2.1 AA)', function () {
  this.timeout(120_000);
  const e2e = useE2eBrowser({ name: 'Teatro Verdi', email: 'box@verdi.example' });
  let orderNo = 0;
  /** Stands in for Stripe's API (test/helpers/stripe-stand-in.ts) for the Stripe merchant's page. */
  let stripeApi: StripeStandIn | undefined;

  after(async () => {
    await stripeApi?.stop();
  });

  /** Mails `text` to the merchant's submission door and returns the reply that `match`es. */
  async function mailMerchant(merchant: E2eMerchant, subject: string, text: string, match: (body: string) => boolean) {
    await e2e.mailAsMerchant(subject, text, merchant);
    return e2e.sink.waitFor((m) => match(m.parsed.text ?? ''));
  }

  /** Mails an order and returns its pay-link and reference. */
  async function orderLink(merchant = e2e.merchant, extraLines = ''): Promise<{ link: string; reference: string }> {
    const reference = `A11Y-${Date.now()}-${++orderNo}`;
    const mail = await mailMerchant(merchant, `Tickets ${reference}`,
      `Amount: 42,00 €\nReference: ${reference}\nDescription: 2 tickets, La Traviata\n${extraLines}`,
      (body) => body.includes(reference) && /\/pay\//.test(body));
    return { link: /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!, reference };
  }

  async function fillCard(page: Page, number: string) {
    await page.getByLabel('Card number').fill(number);
    await page.getByLabel('Expiry (MM/YY)').fill('12/30');
    await page.getByLabel('Security code').fill('123');
    await page.getByLabel('Name on card').fill('Giulia Verdi');
    await page.getByLabel('Email').fill('giulia@example.org');
  }

  async function pay(page: Page, number: string) {
    await fillCard(page, number);
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
  }

  /**
   * Runs axe on the page as shown and fails with every violation (rule, impact, targets, help).
   * Results axe could not decide ("needs review") fail too, but for colour contrast: axe cannot
   * rate the decorative, aria-hidden status glyphs and says so; anything else it flags (an ARIA
   * attribute a screen reader ignores) is a real defect the outside checkers report.
   */
  async function assertAccessible(page: Page) {
    const results = await new AxeBuilder({ page }).withTags(WCAG_AA).analyze();
    const found = [
      ...results.violations,
      ...results.incomplete.filter((r) => r.id !== 'color-contrast').map((r) => ({ ...r, id: `${r.id} (needs review)` })),
    ];
    const report = found.map((v) => [
      `${v.id} [${v.impact ?? 'no impact given'}]: ${v.help} — ${v.helpUrl}`,
      ...v.nodes.map((n) => `    ${n.target.join(' ')}${n.failureSummary ? `\n      ${n.failureSummary.replace(/\n/g, '\n      ')}` : ''}`),
    ].join('\n'));
    assert.equal(found.length, 0, `${page.url()}\n${report.join('\n')}`);
  }

  // Saved cards (issue 12 part 3): a merchant of their own with saved cards on, a customer who saved
  // a card (its receipt's removal link kept for the removal pages below).
  let savedCards: { merchant: E2eMerchant; email: string; removalUrl: string } | undefined;
  async function savedCardsOrder(merchant: E2eMerchant, email: string): Promise<string> {
    const reference = `A11Y-SC-${Date.now()}-${++orderNo}`;
    const mail = await mailMerchant(merchant, `Season ticket ${reference}`, `Amount: 30,00 €\nReference: ${reference}\nEmail: ${email}\n`,
      (body) => body.includes(reference) && /\/pay\//.test(body));
    return /(http:\/\/localhost:\d+\/pay\/\S+)/.exec(mail.parsed.text ?? '')![1]!;
  }
  async function withSavedCard(page: Page) {
    if (savedCards) return savedCards;
    const created = await runCli(['merchant', 'create', '--name', 'Abbonamenti Verdi', '--email', 'desk@abbonamenti.example', '--json'], e2e.env);
    assert.equal(created.code, 0, created.stderr);
    const merchant = JSON.parse(created.stdout) as E2eMerchant;
    await Merchant.updateOne({ _id: merchant.id }, { $set: { savedCardsEnabled: true } });
    const email = 'season@example.org';
    await page.goto(await savedCardsOrder(merchant, email));
    await fillCheckoutCard(page, { holder: 'Giulia Verdi' });
    await page.getByLabel('Save my card for future payments to Abbonamenti Verdi').check();
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForLoadState();
    const receipt = await e2e.sink.waitFor((m) => m.envelope.to.includes(email) && /\/cards\//.test(m.parsed.text ?? ''));
    const removalUrl = /(http:\/\/localhost:\d+\/cards\/\S+)/.exec(receipt.parsed.text ?? '')![1]!;
    savedCards = { merchant, email, removalUrl };
    return savedCards;
  }

  /** Each case opens one page (its heading shown) in a fresh browser context. */
  const pages: Array<{ name: string; open: (page: Page) => Promise<void> }> = [
    {
      name: 'the start page (development)',
      open: async (page) => {
        await page.goto(`${e2e.base}/`);
      },
    },
    {
      name: 'a payable checkout page in English',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await page.getByRole('button', { name: /^Pay / }).waitFor();
      },
    },
    {
      name: 'a payable checkout page without its script',
      open: async (page) => {
        // axe itself needs JavaScript: block the page's own script instead, as a browser without it.
        await page.route('**/assets/checkout.js', (route) => route.abort());
        await page.goto((await orderLink()).link);
        await page.getByRole('button', { name: /^Pay / }).waitFor();
      },
    },
    {
      name: 'a payable checkout page in Italian',
      open: async (page) => {
        await page.goto(`${(await orderLink()).link}&lang=it`);
        await page.getByRole('button', { name: /^Paga / }).waitFor();
        assert.equal(await page.getAttribute('html', 'lang'), 'it');
      },
    },
    {
      name: 'the checkout of a deposit, with the payment schedule (issue 13 part 1)',
      open: async (page) => {
        const balanceDue = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
        await page.goto((await orderLink(e2e.merchant, `Deposit: 30%\nBalance due: ${balanceDue}\n`)).link);
        await page.getByRole('button', { name: 'Pay €12.60' }).waitFor();
        await page.getByRole('table').waitFor();
      },
    },
    {
      name: 'the receipt page of a deposit, the balance to follow (issue 13 part 1)',
      open: async (page) => {
        const balanceDue = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
        await page.goto((await orderLink(e2e.merchant, `Deposit: 30%\nBalance due: ${balanceDue}\n`)).link);
        await pay(page, '4242 4242 4242 4242');
        await page.getByRole('heading', { name: 'Deposit received' }).waitFor();
        assert.match(await page.locator('.plan-state').innerText(), /The balance of €29\.40 will follow: on \w+ \d+, \d{4}\./);
      },
    },
    {
      name: 'the checkout after a declined card',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await pay(page, '4000 0000 0000 0002');
        await page.locator('#refusal').waitFor();
      },
    },
    {
      name: 'the checkout with field errors (error summary)',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await pay(page, '4242 4242 4242 4241');
        await page.locator('#error-summary').waitFor();
      },
    },
    {
      name: 'the 3-D Secure challenge page',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await pay(page, '4000 0000 0000 3220');
        await page.getByRole('heading', { name: 'Confirm this payment' }).waitFor();
      },
    },
    {
      name: 'the expired page',
      open: async (page) => {
        const { link, reference } = await orderLink();
        await Order.updateOne({ reference }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
        await page.goto(link);
        await page.locator('#expired-heading').waitFor();
      },
    },
    {
      name: 'the expired page after asking for a new link (issue 13 part 4)',
      open: async (page) => {
        const { link, reference } = await orderLink();
        await Order.updateOne({ reference }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
        await page.goto(link);
        await page.getByLabel('Your email address').fill('giulia@example.org');
        await page.getByRole('button', { name: /^Ask Teatro Verdi for a new link$/ }).click();
        await page.locator('#new-link-heading').waitFor();
      },
    },
    {
      name: 'the stop-reminders page and its confirmation (issue 13 part 3)',
      open: async (page) => {
        const { reference } = await orderLink();
        const order = (await Order.findOne({ reference }).lean<{ publicId: string }>())!;
        const keys = JSON.parse(await readFile(path.join(e2e.env.DATA_DIR!, 'keys', 'link-keys.json'), 'utf8')) as LinkKey[];
        await page.goto(remindersOffUrl(e2e.base, keys, order.publicId));
        await page.locator('#reminders-off-heading').waitFor();
        await assertAccessible(page);
        await page.getByRole('button', { name: 'Stop reminders' }).click();
        await page.locator('#reminders-off-done').waitFor();
      },
    },
    {
      name: 'the cancelled page',
      open: async (page) => {
        const { link, reference } = await orderLink();
        await mailMerchant(e2e.merchant, `CANCEL ${reference}`, '', (body) => body.includes(reference) && /cancel/i.test(body));
        await page.goto(link);
        await page.locator('#cancelled-heading').waitFor();
      },
    },
    {
      name: 'the paid page (receipt)',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await pay(page, '4242 4242 4242 4242');
        await page.getByRole('heading', { name: 'Payment received' }).waitFor();
      },
    },
    {
      name: 'the receipt verify page',
      open: async (page) => {
        await page.goto((await orderLink()).link);
        await pay(page, '4242 4242 4242 4242');
        const verify = await page.locator('a[href*="/receipts/verify?token="]').getAttribute('href');
        await page.goto(new URL(verify!, e2e.base).href);
        await page.locator('#verify-heading').waitFor();
      },
    },
    {
      name: 'the suspended-merchant page',
      open: async (page) => {
        const created = await runCli(['merchant', 'create', '--name', 'Pensione Aurora', '--email', 'desk@aurora.example', '--json'], e2e.env);
        assert.equal(created.code, 0, created.stderr);
        const merchant = JSON.parse(created.stdout) as E2eMerchant;
        const { link } = await orderLink(merchant);
        const suspended = await runCli(['merchant', 'suspend', merchant.id, '--reason', 'accessibility test'], e2e.env);
        assert.equal(suspended.code, 0, suspended.stderr);
        await page.goto(link);
        await page.locator('#suspended-heading').waitFor();
      },
    },
    {
      name: "the 3-D Secure page of an acquirer with its own authentication page (Stripe, issue 12 part 4)",
      open: async (page) => {
        const created = await runCli(['merchant', 'create', '--name', 'Libreria Stripe', '--email', 'desk@stripe-books.example', '--json'], e2e.env);
        assert.equal(created.code, 0, created.stderr);
        const merchant = JSON.parse(created.stdout) as E2eMerchant;
        stripeApi ??= await startStripeStandIn();
        const set = await runCli(['merchant', 'set-acquirer', merchant.id, 'stripe', '--secret-key', 'sk_test_a11yStandInKey1234', '--api-base', stripeApi.url], e2e.env);
        assert.equal(set.code, 0, set.stderr);
        await page.goto((await orderLink(merchant)).link);
        await pay(page, '4000 0000 0000 3220');
        await page.getByRole('link', { name: "Continue to your bank's verification" }).waitFor();
      },
    },
    {
      name: 'a checkout page with "Save my card" and one-click payment with a saved card (issue 12 part 3)',
      open: async (page) => {
        const { merchant, email } = await withSavedCard(page);
        await page.goto(await savedCardsOrder(merchant, email));
        await page.getByRole('button', { name: 'Pay with Visa •••• 4242' }).waitFor();
        await page.getByLabel('Save my card for future payments to Abbonamenti Verdi').waitFor();
      },
    },
    {
      name: "the saved card's removal page (the receipt's link)",
      open: async (page) => {
        await page.goto((await withSavedCard(page)).removalUrl);
        await page.getByRole('button', { name: 'Remove the card' }).waitFor();
      },
    },
    {
      name: 'the saved card removed',
      open: async (page) => {
        await page.goto((await withSavedCard(page)).removalUrl);
        await page.getByRole('button', { name: 'Remove the card' }).click();
        await page.getByRole('heading', { name: 'Your card has been removed' }).waitFor();
      },
    },
  ];

  for (const { name, open } of pages) {
    it(`${name} has no WCAG 2.1 A/AA violations`, async () => {
      const ctx = await e2e.browser.newContext();
      try {
        const page = await ctx.newPage();
        await open(page);
        await assertAccessible(page);
      } finally {
        await ctx.close();
      }
    });
  }
});
