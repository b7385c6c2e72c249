// Operations endpoints of a real paymail (startPaymail in this process, real HTTP and SMTP on
// 127.0.0.1): /healthz, /metrics counters moving after a refused RCPT and an accepted mail,
// database-derived gauges, and /readyz turning 503 when the database connection is closed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { createLogger } from '../../src/logger.ts';
import { invalidateMetricsCache } from '../../src/metrics.ts';
import { startPaymail, type RunningPaymail } from '../../src/server.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { testDbUri } from '../helpers/db.ts';
import { repos } from '../helpers/db.ts';

const DOMAIN = 'paymail.test';

/** Value of one sample line of the Prometheus text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('operations endpoints: /healthz, /readyz, /metrics', function () {
  this.timeout(60_000);
  let uri = '';
  let dataDir = '';
  let app: RunningPaymail | undefined;
  let base = '';
  let merchant: { inboundAddress: string; smtpUser: string; smtpPassword: string; email: string };

  const metrics = async () => {
    invalidateMetricsCache();
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    return res.text();
  };
  const send = (to: string) => {
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: app!.ports.submission,
      secure: false,
      auth: { user: merchant.smtpUser, pass: merchant.smtpPassword },
      tls: { rejectUnauthorized: false },
    });
    return smtp
      .sendMail({ from: merchant.email, to, subject: 'Booking OPS-1', text: 'Amount: 12.50 EUR\nReference: OPS-1\n' })
      .finally(() => smtp.close());
  };

  before(async () => {
    uri = testDbUri();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-ops-'));
    const config = loadConfig({
      MONGODB_URI: uri,
      DATA_DIR: dataDir,
      HTTP_PORT: '0',
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      MAIL_DOMAIN: DOMAIN,
      NODE_ENV: 'test',
    });
    app = await startPaymail(config, createLogger('silent'));
    base = `http://127.0.0.1:${app.ports.http}`;
    merchant = await createMerchantService({ repos, mailDomain: DOMAIN }).create({ name: 'Ops Shop', email: 'desk@ops.example' });
  });

  after(async () => {
    await app?.stop();
    // stop() disconnected mongoose: reconnect only to drop this file's database.
    await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000 });
    await mongoose.connection.dropDatabase().catch(() => {});
    await mongoose.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('/healthz answers 200 and /readyz 200 with every check ok', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ready');
    assert.deepEqual(Object.keys(body.checks).sort(), ['database', 'outbox']);
  });

  it('counts a refused RCPT and an accepted mail by door and code, and the order by status', async () => {
    const before = await metrics();
    const labels = { door: 'submission' };
    await assert.rejects(send(`orders+nosuchalias@${DOMAIN}`), (err: { responseCode?: number }) => err.responseCode === 550);
    await send(merchant.inboundAddress);
    // The order is created after the 250 (processing is asynchronous): wait for it, bounded.
    const deadline = Date.now() + 15_000;
    while ((await Order.countDocuments({ reference: 'OPS-1' })) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const after = await metrics();
    const rcpt550 = (t: string) => sample(t, 'paymail_smtp_replies_total', { ...labels, stage: 'rcpt', code: '550' });
    const data250 = (t: string) => sample(t, 'paymail_smtp_replies_total', { ...labels, stage: 'data', code: '250' });
    assert.equal(rcpt550(after) - rcpt550(before), 1);
    assert.equal(data250(after) - data250(before), 1);
    assert.equal(sample(after, 'paymail_orders', { status: 'pending' }), 1);
    assert.equal(sample(after, 'paymail_orders', { status: 'paid' }), 0);
    assert.ok(after.includes('paymail_nodejs_eventloop_lag_seconds'), 'event-loop lag is exported');
    assert.ok(after.includes('paymail_outbox_depth '), 'outbox depth is exported');
    assert.ok(after.includes('paymail_outbox_oldest_pending_age_seconds '), 'outbox age is exported');
  });

  it('/readyz turns 503 naming the database when its connection is closed', async () => {
    await mongoose.connection.close();
    const res = await fetch(`${base}/readyz`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean; error?: string }> };
    assert.equal(res.status, 503);
    assert.equal(body.status, 'unavailable');
    assert.equal(body.checks.database?.ok, false);
    // /metrics still answers (process figures), without the database-derived samples.
    const text = await metrics();
    assert.equal(sample(text, 'paymail_orders', { status: 'pending' }), 0);
  });
});
