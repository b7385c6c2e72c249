// Shared set-up of the end-to-end tests: a real SMTP relay (sink), a merchant created with the
// CLI, paymail started as a process on the test database, and Debian's Chromium when needed;
// useE2eBrowser / useE2eApp register a suite's mocha hooks that start and stop them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
import { useTestDatabase } from './db.ts';
import { runCli, startPaymail, type PaymailProcess } from './paymail-process.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = path.resolve(import.meta.dirname, '../../test-output/screenshots');

export interface E2eMerchant {
  id: string;
  inboundAddress: string;
  smtpUser: string;
  smtpPassword: string;
  adminEmail: string;
  adminPassword: string;
}

export interface E2eApp {
  sink: SmtpSink;
  app: PaymailProcess;
  merchant: E2eMerchant;
  env: Record<string, string>;
  base: string;
  stop(): Promise<void>;
}

/** The merchant an end-to-end suite creates; `args` are more `paymail merchant create` options. */
export interface E2eMerchantSpec {
  name: string;
  email: string;
  args?: string[];
}

/** Starts relay, merchant (via `paymail merchant create`) and paymail; `stop` asserts a clean exit. */
export async function startE2eApp(dbUri: string, merchant: E2eMerchantSpec): Promise<E2eApp> {
  const sink = await startSmtpSink();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-e2e-'));
  const httpPort = await freePort();
  const base = `http://localhost:${httpPort}`;
  const env = {
    MONGODB_URI: dbUri,
    DATA_DIR: dataDir,
    HTTP_PORT: String(httpPort),
    PUBLIC_URL: base,
    SMTP_SUBMISSION_PORT: '0',
    SMTP_MX_PORT: '0',
    OUTBOUND_SMTP_URL: sink.url,
    MAIL_DOMAIN: 'paymail.test',
  };
  const cli = await runCli(['merchant', 'create', '--name', merchant.name, '--email', merchant.email, ...(merchant.args ?? []), '--json'], env);
  assert.equal(cli.code, 0, cli.stderr);
  const created = JSON.parse(cli.stdout) as E2eMerchant;
  const app = await startPaymail(env);
  return {
    sink,
    app,
    merchant: created,
    env,
    base,
    async stop() {
      try {
        assert.equal(await app.stop('SIGTERM'), 0, 'paymail exits cleanly on SIGTERM');
      } finally {
        await sink.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Launches Debian's Chromium headless. Without it, CI fails (it installs Chromium in .ci/run) and
 * a developer's run marks the suite pending via `skip`.
 */
export async function launchChromium(skip: () => void): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}`);
    skip();
  }
  await mkdir(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/**
 * Fills the hosted checkout's card form as a customer types it: `number` (the sandbox's approving
 * card unless given), expiry 12/30, CVC 123, the holder's name, and `email` when given and the form
 * asks for one (a pay-link without the customer's address). Submitting is the caller's.
 */
export async function fillCheckoutCard(page: Page, opts: { number?: string; holder: string; email?: string }): Promise<void> {
  await page.getByLabel('Card number').fill(opts.number ?? '4242 4242 4242 4242');
  await page.getByLabel('Expiry (MM/YY)').fill('12/30');
  await page.getByLabel('Security code', { exact: true }).fill('123');
  await page.getByLabel('Name on card').fill(opts.holder);
  if (opts.email) {
    const email = page.getByLabel('Email');
    if (await email.count()) await email.fill(opts.email);
  }
}

/** What useE2eApp hands a suite: the started app's parts, to read in its hooks and tests. */
export interface E2eSuiteApp extends Omit<E2eApp, 'stop'> {
  /**
   * Mails `subject` and `text` to the order address of `merchant` (the suite's by default) through
   * the submission door, as a merchant's mailbox does: from the suite's merchant e-mail, logged in
   * with `merchant`'s SMTP user.
   */
  mailAsMerchant(subject: string, text: string, merchant?: E2eMerchant): Promise<void>;
}

/** What useE2eBrowser hands a suite: the started app's parts and the suite's Chromium. */
export interface E2eSuiteBrowser extends E2eSuiteApp {
  readonly browser: Browser;
}

/**
 * Registers an end-to-end suite's mocha hooks: its own database (useTestDatabase), then before():
 * Chromium (`browser`; the suite pending or failing without it, as launchChromium says) and paymail
 * with its merchant (startE2eApp); after(): the browser closed and paymail stopped, its clean exit
 * asserted. Call it first in the describe() body: the suite's own before() hooks run after these,
 * against the started app, and are skipped with the suite; its after() hooks run after the stop.
 */
function useE2e(merchant: E2eMerchantSpec, withBrowser: boolean): E2eSuiteBrowser {
  const db = useTestDatabase();
  let e2e: E2eApp | undefined;
  let browser: Browser | undefined;
  before(async function () {
    if (withBrowser) browser = await launchChromium(() => this.skip());
    e2e = await startE2eApp(db.uri(), merchant);
  });
  after(async () => {
    await browser?.close();
    await e2e?.stop();
  });
  const started = (): E2eApp => {
    if (!e2e) throw new Error('the end-to-end app starts in before(): read it in a hook or a test');
    return e2e;
  };
  return {
    get browser() {
      if (!browser) throw new Error(withBrowser ? 'Chromium is launched in before(): read it in a hook or a test' : 'useE2eApp launches no browser: use useE2eBrowser');
      return browser;
    },
    get sink() { return started().sink; },
    get app() { return started().app; },
    get merchant() { return started().merchant; },
    get env() { return started().env; },
    get base() { return started().base; },
    async mailAsMerchant(subject, text, to = started().merchant) {
      const smtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port: started().app.ports.submission,
        auth: { user: to.smtpUser, pass: to.smtpPassword },
        tls: { rejectUnauthorized: false },
      });
      try {
        await smtp.sendMail({ from: merchant.email, to: to.inboundAddress, subject, text });
      } finally {
        smtp.close();
      }
    },
  };
}

/** The suite's database, Chromium and paymail with `merchant`, started once in before() (see useE2e). */
export function useE2eBrowser(merchant: E2eMerchantSpec): E2eSuiteBrowser {
  return useE2e(merchant, true);
}

/** The suite's database and paymail with `merchant`, no browser (a test may launch its own). */
export function useE2eApp(merchant: E2eMerchantSpec): E2eSuiteApp {
  return useE2e(merchant, false);
}
