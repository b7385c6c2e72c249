// Shared set-up of the end-to-end tests: a real SMTP relay (sink), a merchant created with the
// CLI, paymail started as a process on the test database, and Debian's Chromium when needed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../../src/db/embedded-ferretdb.ts';
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

/** Starts relay, merchant (via `paymail merchant create`) and paymail; `stop` asserts a clean exit. */
export async function startE2eApp(dbUri: string, merchant: { name: string; email: string }): Promise<E2eApp> {
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
  const cli = await runCli(['merchant', 'create', '--name', merchant.name, '--email', merchant.email, '--json'], env);
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
