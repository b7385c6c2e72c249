// Robustness of the intake: malformed and hostile mails (test/robustness/hostile-mails.ts) through
// the real submission door of a paymail process, several SMTP connections at once, while another
// client sends normal orders. Every mail gets an SMTP answer, the process stays up, the normal
// client is answered promptly, and every stored message ends processed or failed. Prints the
// longest event-loop stall of the paymail process.
// ROBUSTNESS_COUNT=10000 runs the full set (minutes); the default keeps `npm test` short.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InboundMessage } from '../../src/db/models/inbound-message.model.ts';
import { Order } from '../../src/db/models/order.model.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { flood, ms, startOrderProbe, startProbedPaymail, type ProbedPaymail, type SmtpTarget } from './flood.ts';
import { KINDS } from './hostile-mails.ts';
import { repos } from '../helpers/db.ts';

const COUNT = Number(process.env.ROBUSTNESS_COUNT ?? 40);
const SEED = Number(process.env.ROBUSTNESS_SEED ?? 20260601);
const CONNECTIONS = 4;
/**
 * A normal merchant waits at most this long for its answer while the flood runs: the door answers
 * 451 after 5 s when the database cannot store the message (FerretDB saturated by the large ones).
 */
const ORDER_ANSWER_BOUND_MS = 10_000;
const MAIL_DOMAIN = 'paymail.test';

describe('robustness: hostile mails through the submission door', function () {
  // Start-up, then up to ~0.3 s a mail on a busy two-core machine (FerretDB writes dominate:
  // the 10 MB message alone is ~5 s of database work), then the final drain.
  this.timeout(120_000 + COUNT * 300);
  const db = useTestDatabase();
  let app: ProbedPaymail;
  let dataDir: string;
  let target: SmtpTarget;

  before(async () => {
    const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Robust shop', email: 'desk@robust.example' });
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'paymail-robustness-'));
    app = await startProbedPaymail({
      MONGODB_URI: db.uri(),
      DATA_DIR: dataDir,
      HTTP_PORT: '0',
      SMTP_SUBMISSION_PORT: '0',
      SMTP_MX_PORT: '0',
      MAIL_DOMAIN,
      LOG_LEVEL: 'error',
      // The largest limit paymail allows, so the 10 MB text part is accepted and parsed.
      MAX_MESSAGE_BYTES: String(15 * 1024 * 1024),
    });
    target = { port: app.ports.submission, user: m.smtpUser, pass: m.smtpPassword, to: m.inboundAddress, from: m.email };
  });
  after(async () => {
    await app?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it(`answers ${COUNT} hostile mails, keeps answering a normal client, and leaves nothing stuck`, async () => {
    assert.ok(COUNT >= KINDS.length, `ROBUSTNESS_COUNT must be at least ${KINDS.length} to cover every kind`);
    await app.stats(true);
    const probe = startOrderProbe(target);
    const started = Date.now();
    const progress = process.env.ROBUSTNESS_PROGRESS ? (n: number) => n % 100 === 0 && console.log(`      ${n} answered after ${Date.now() - started} ms`) : undefined;
    const run = await flood({ target, seed: SEED, count: COUNT, connections: CONNECTIONS, ...(progress ? { onProgress: progress } : {}) });
    const orders = await probe.stop();
    const loop = await app.stats();

    // Every mail answered with a reply code: 250 stored, 552 too big, 451 "try again later" when
    // the database could not store it in time. No connection dropped without an answer.
    assert.deepEqual(run.unanswered, []);
    const total = Object.values(run.byCode).reduce((a, b) => a + b, 0);
    assert.equal(total, COUNT);
    for (const code of Object.keys(run.byCode)) assert.match(code, /^(250|451|552)$/, `unexpected answer ${code}: ${JSON.stringify(run.byKind)}`);
    assert.ok((run.byCode['250'] ?? 0) > 0, 'some hostile mails were stored');
    assert.ok(app.alive(), 'paymail is still running');

    // The normal client was answered within the bound, every time, and mostly with a 250.
    assert.ok(orders.sent >= 1);
    assert.ok(orders.accepted >= 1, 'at least one normal order stored');
    assert.ok(orders.maxLatencyMs < ORDER_ANSWER_BOUND_MS, `a normal order waited ${ms(orders.maxLatencyMs)} ms for its answer`);

    // Every stored message ends processed or failed (the pool fails the ones mailparser refuses).
    const deadline = Date.now() + 60_000 + COUNT * 100;
    let open = Infinity;
    while (Date.now() < deadline && (open = await InboundMessage.countDocuments({ status: { $in: ['received', 'processing'] } })) > 0) {
      await new Promise((r) => setTimeout(r, 250));
    }
    if (open > 0) {
      const stuck = await InboundMessage.find({ status: { $in: ['received', 'processing'] } }, { status: 1, attempts: 1, lastError: 1, size: 1, leaseUntil: 1 }).limit(5).lean();
      const st = await app.stats();
      assert.fail(`${open} messages still received or processing, e.g. ${JSON.stringify(stuck)}; pool ${JSON.stringify(st.pool)}\n${app.output.join('').slice(-3000)}`);
    }
    const ids = [...run.storedIds];
    const statusOf = new Map((await InboundMessage.find({}, { status: 1 }).lean()).map((d) => [String(d._id), d.status]));
    const byStatus: Record<string, number> = {};
    for (const id of ids) byStatus[statusOf.get(id) ?? 'missing'] = (byStatus[statusOf.get(id) ?? 'missing'] ?? 0) + 1;
    assert.equal((byStatus.processed ?? 0) + (byStatus.failed ?? 0), ids.length, JSON.stringify(byStatus));
    // The normal orders became orders.
    assert.equal(await Order.countDocuments({ reference: { $in: orders.references } }), orders.references.length);
    assert.ok(app.alive(), 'paymail is still running after the drain');

    const after = await app.stats();
    console.log(
      `      ${COUNT} hostile mails in ${ms(run.durationMs / 1000)} s over ${CONNECTIONS} connections; answers ${JSON.stringify(run.byCode)} (${run.retried} retried → ${JSON.stringify(run.afterRetry)}); ` +
        `stored ${ids.length} → ${JSON.stringify(byStatus)}\n` +
        `      longest event-loop stall ${ms(loop.maxStallMs)} ms (p99 ${ms(loop.p99StallMs)} ms; ${ms(after.maxStallMs)} ms including the drain); ` +
        `normal orders ${orders.accepted}/${orders.sent} stored, slowest answer ${ms(orders.maxLatencyMs)} ms; pool ${JSON.stringify(after.pool)}`,
    );
  });
});
