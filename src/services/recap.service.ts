// The daily recap: one mail per merchant and local day, about the previous local day (local
// midnight to midnight in the merchant's zone, 23 or 25 hours on DST change days).
// - Exactly once: claim `recap:<merchant>:<date>` (an insert under a unique _id) decides across
//   instances and restarts; the mail is enqueued with the same string as its outbox dedupe key,
//   so a claim whose winner died before enqueueing is finished by the next run (unapplied claims
//   of kind 'recap') and can never produce a second mail.
// - Late rather than never: each run looks back RECAP_LOOKBACK_DAYS for days whose recap hour has
//   passed without a claim (the service was down), never before the merchant existed.
// - One read per group of merchants (recap-build.ts, MERCHANTS_PER_READ), not a dozen queries per
//   recap: the recaps of up to 500 merchants are built from ONE streamed read of their orders
//   touched in the run's day windows (created, paid — each part of an order paid in parts on its
//   own day —, expired, attempted, or refunded then, and the part-paid orders to act on) and one
//   of their refunds, aggregated per merchant and day in memory: totals, the lists capped at
//   RECAP_LIST_LIMIT, CSV lines. Memory follows one group's days, never the collection nor the
//   number of merchants.
// - The 7-day chart reads earlier days' totals from `recap_days` (stored by earlier runs); days
//   not stored yet widen the pass's payment window, and are stored for the next runs.
//
// Modules: the recap aggregate, its data and schedule in src/domain/recap-{day,data,schedule,
// local-time}.ts; the one-pass assembly of the mail data in recap-build.ts; here the claims and
// the queueing of the mails.
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { AppError } from '../domain/errors.ts';
import { addDays, isLocalDate } from '../domain/local-day.ts';
import { type RecapData } from '../domain/recap-data.ts';
import { dayBounds } from '../domain/recap-local-time.ts';
import { dueDates, previousLocalDay, zoneOf } from '../domain/recap-schedule.ts';
import { type Logger } from '../logger.ts';
import { enqueueMails } from '../mail/outbox.ts';
import { createRecapBuilder } from './recap-build.ts';

export type { RecapData, RecapTotal } from '../domain/recap-data.ts';
export { RECAP_CSV_HEADER, RECAP_LIST_LIMIT } from '../domain/recap-day.ts';
export { DEFAULT_RECAP_HOUR, previousLocalDay, RECAP_LOOKBACK_DAYS } from '../domain/recap-schedule.ts';
export { RECAP_CHART_DAYS } from './recap-build.ts';

/** Stored day totals older than this (before the run's `now`) are deleted. */
export const RECAP_DAYS_KEEP = 21;
/** A claim older than this without its mail enqueued belongs to a run that died. */
const RECOVER_AFTER_MS = 60_000;
/**
 * Recap mails queued per batch: two inserts (due entries, mails) and one claims update for all of
 * them. One insert each cost ~30–50 ms a mail on FerretDB (a write transaction each) and dominated
 * the run at 10,000 merchants.
 */
const ENQUEUE_BATCH = 100;

export const recapKey = (merchantId: string, date: string): string => `recap:${merchantId}:${date}`;

export type SendOutcome = 'sent' | 'resent' | 'skipped';

export interface SendResult {
  merchantId: string;
  date: string;
  outcome?: SendOutcome;
  error?: AppError;
}

export interface RecapServiceDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  mailDomain: string;
  logger?: Logger;
  /** Recorded on claims, to tell instances apart when debugging. */
  owner?: string;
  /** Recap mails queued per batch (ENQUEUE_BATCH). */
  enqueueBatch?: number;
  /** Merchants recapped from one read of the orders (MERCHANTS_PER_READ in recap-build.ts). */
  merchantsPerRead?: number;
}

export function createRecapService(deps: RecapServiceDeps) {
  const log = deps.logger?.child({ component: 'recap' });
  const store = deps.repos.recaps;
  /** Recap claims known to exist (pruned only long after the look-back): later runs skip them without a read. */
  const knownClaims = new Set<string>();
  const { buildRecaps, buildRecapsEach } = createRecapBuilder(store, { merchantsPerRead: deps.merchantsPerRead });

  /** Everything the recap mail shows about `date` (a local day of the merchant). */
  async function buildRecap(merchant: MerchantDoc, date: string, now = new Date()): Promise<RecapData> {
    return (await buildRecaps([{ merchant, date }], now))[0]!;
  }

  function mailOf(merchant: MerchantDoc, data: RecapData, dedupeKey: string) {
    return { dedupeKey, template: 'daily-recap' as const, locale: merchant.locale, to: [merchant.email], merchantId: merchant._id, data };
  }

  /**
   * Builds the recaps a group of merchants per read, finishing and enqueueing the mails ENQUEUE_BATCH at a time
   * (two batched writes each) and marks their claims applied (one more), so the run holds one
   * batch of finished mail data at a time; `done` is told of each one enqueued.
   * A recap whose data breaks the mail contract is logged and left unapplied: recover() retries it
   * on every run, so the error stays visible until fixed, and it never holds back the others.
   */
  async function enqueueAll(
    jobs: Array<{ merchant: MerchantDoc; date: string; key: string }>,
    now: Date,
    done?: (i: number) => void,
    timings: Record<string, number> = {},
    refused?: (i: number, err: AppError) => void,
  ): Promise<number> {
    if (jobs.length === 0) return 0;
    let n = 0;
    let queueing = 0;
    await buildRecapsEach(
      jobs,
      now,
      deps.enqueueBatch ?? ENQUEUE_BATCH,
      async (data, at) => {
        const t0 = performance.now();
        const batch = at.map((i) => jobs[i]!);
        const outcomes = await enqueueMails(batch.map((job, k) => mailOf(job.merchant, data[k]!, job.key)), deps.mailDomain, deps.repos.outbox);
        const applied: string[] = [];
        outcomes.forEach((o, k) => {
          if (typeof o === 'object') {
            log?.error({ err: o.invalid, merchantId: batch[k]!.merchant._id, date: batch[k]!.date }, 'recap mail data invalid; not queued');
            refused?.(at[k]!, o.invalid);
            return;
          }
          applied.push(batch[k]!.key);
          n++;
          done?.(at[k]!);
        });
        // A crash before the mark leaves the claims to recover(), which the dedupe keys make harmless.
        if (applied.length) await store.markApplied(applied);
        queueing += performance.now() - t0;
      },
      timings,
    );
    timings.enqueue = Math.round(queueing);
    return n;
  }

  /**
   * Inserts the claims in one batch; returns the keys this caller won. A duplicate _id means
   * another caller has it (the insert of each document is atomic on FerretDB and MongoDB alike).
   */
  async function claimMany(claims: Array<{ key: string; merchantId: string; date: string; kind: 'recap' | 'recap-resend' }>, now: Date): Promise<Set<string>> {
    const won = new Set<string>();
    if (claims.length === 0) return won;
    const taken = await store.claim(claims, now, deps.owner);
    for (const c of claims) {
      knownClaims.add(c.key);
      if (taken.has(c.key)) won.add(c.key);
    }
    return won;
  }
  /** Claims whose winner died before the mail was enqueued: to be finished (dedupe keeps them single). */
  async function stuckClaims(now: Date): Promise<Array<{ key: string; merchantId: string; date: string }>> {
    return [...(await store.stuckClaims('recap', RECOVER_AFTER_MS, now)), ...(await store.stuckClaims('recap-resend', RECOVER_AFTER_MS, now))];
  }

  async function merchantsById(ids: string[]): Promise<Map<string, MerchantDoc>> {
    const list = await store.merchantsByIds([...new Set(ids)]);
    return new Map(list.map((m) => [m._id, m]));
  }

  /** Finishes stuck claims (see stuckClaims); the count of mails enqueued. */
  async function recover(now: Date): Promise<number> {
    const stuck = await stuckClaims(now);
    const merchants = await merchantsById(stuck.map((s) => s.merchantId));
    const jobs = stuck.flatMap((s) => {
      const merchant = merchants.get(s.merchantId);
      return merchant && isLocalDate(s.date) ? [{ merchant, date: s.date, key: s.key }] : [];
    });
    const n = await enqueueAll(jobs, now);
    for (const s of stuck) if (!jobs.some((j) => j.key === s.key)) await store.markApplied([s.key]);
    return n;
  }

  /** Drops stored day totals nobody's chart will read again (only in runs that recapped). */
  async function prune(now: Date): Promise<void> {
    await store.pruneDaysBefore(addDays(now.toISOString().slice(0, 10), -RECAP_DAYS_KEEP));
  }

  /** One pass of the job: every active merchant's due recaps, including missed days, and stuck claims. */
  async function runDue(now: Date): Promise<{ sent: number; recovered: number }> {
    const t0 = performance.now();
    const timings: Record<string, number> = {};
    const stuck = await stuckClaims(now);
    const candidates: Array<{ merchant: MerchantDoc; date: string; key: string }> = [];
    const active = new Map<string, MerchantDoc>();
    for await (const merchant of store.activeMerchants()) {
      active.set(merchant._id, merchant);
      for (const date of dueDates(merchant, now)) {
        const key = recapKey(merchant._id, date);
        if (!knownClaims.has(key)) candidates.push({ merchant, date, key });
      }
    }
    // Which of them were claimed already (by an earlier run, another instance, the CLI): one read.
    if (candidates.length > 0) {
      const oldest = candidates.reduce((o, c) => (c.date < o ? c.date : o), candidates[0]!.date);
      const taken = store.claimedKeys('recap', { from: oldest });
      for await (const c of taken) knownClaims.add(c._id);
      if (knownClaims.size > 200_000) knownClaims.clear();
    }
    const open = candidates.filter((c) => !knownClaims.has(c.key));
    // Every merchant's due days of the look-back (70,000 at 10,000 merchants): not held through the run.
    candidates.length = 0;
    const won = await claimMany(open.map((c) => ({ key: c.key, merchantId: c.merchant._id, date: c.date, kind: 'recap' })), now);

    const recoverMerchants = await merchantsById(stuck.filter((s) => !active.has(s.merchantId)).map((s) => s.merchantId));
    const recoverJobs = stuck.flatMap((s) => {
      const merchant = active.get(s.merchantId) ?? recoverMerchants.get(s.merchantId);
      return merchant && isLocalDate(s.date) ? [{ merchant, date: s.date, key: s.key }] : [];
    });
    const jobs = [...open.filter((c) => won.has(c.key)), ...recoverJobs];
    open.length = 0;
    active.clear();
    timings.claims = Math.round(performance.now() - t0);
    let sent = 0;
    let recovered = 0;
    try {
      await enqueueAll(jobs, now, (i) => (i < jobs.length - recoverJobs.length ? sent++ : recovered++), timings);
    } catch (err) {
      // Claims left unapplied: a later run finishes them.
      log?.error({ err, recaps: jobs.length }, 'recaps failed; will retry');
    }
    for (const s of stuck) if (!recoverJobs.some((j) => j.key === s.key)) await store.markApplied([s.key]);
    if (jobs.length > 0) await prune(now).catch((err: unknown) => log?.warn({ err }, 'pruning recap_days failed'));
    // Phase timings (ms): where a slow run spends its time.
    if (sent || recovered) log?.info({ sent, recovered, ms: Math.round(performance.now() - t0), timings }, 'recaps enqueued');
    return { sent, recovered };
  }

  /**
   * For the CLI: sends each (merchant, date) recap unless it was already sent; with `force`,
   * sends it again under a new dedupe key (`…:resend:<n>`, n claimed so two operators never
   * collide). A missing date means the merchant's previous local day. All recaps come from one
   * pass; `progress` is told of each finished item. Errors are per item (AppError codes).
   */
  async function sendMany(
    items: Array<{ merchantId: string; date?: string }>,
    opts: { force?: boolean; now?: Date; progress?: (r: SendResult) => void } = {},
  ): Promise<SendResult[]> {
    const now = opts.now ?? new Date();
    const merchants = await merchantsById(items.map((i) => i.merchantId));
    const results: SendResult[] = [];
    const ready: Array<{ r: SendResult; merchant: MerchantDoc; key: string }> = [];
    for (const it of items) {
      const merchant = merchants.get(it.merchantId);
      const date = it.date ?? (merchant ? previousLocalDay(merchant, now) : '');
      const r: SendResult = { merchantId: it.merchantId, date };
      results.push(r);
      if (it.date !== undefined && !isLocalDate(it.date)) r.error = new AppError('RECAP_DATE_INVALID', `expected a date as YYYY-MM-DD, got "${it.date}"`);
      else if (!merchant) r.error = new AppError('MERCHANT_NOT_FOUND', `no merchant ${it.merchantId}`);
      else if (dayBounds(date, zoneOf(merchant)).end > now.getTime()) {
        r.error = new AppError('RECAP_DAY_NOT_OVER', `${date} is not over yet in ${zoneOf(merchant)}`);
      } else {
        ready.push({ r, merchant, key: recapKey(merchant._id, date) });
        continue;
      }
      opts.progress?.(r);
    }
    const won = await claimMany(ready.map((x) => ({ key: x.key, merchantId: x.merchant._id, date: x.r.date, kind: 'recap' })), now);
    const jobs: Array<{ merchant: MerchantDoc; date: string; key: string; r: SendResult }> = [];
    const resend = ready.filter((x) => !won.has(x.key));
    if (opts.force && resend.length > 0) {
      // Resend numbers taken so far, from one read; a collision with a concurrent operator moves on.
      const taken = new Map<string, number>();
      const dates = [...new Set(resend.map((x) => x.r.date))];
      for await (const c of store.claimedKeys('recap-resend', { in: dates })) {
        const m = /^(.*):resend:(\d+)$/.exec(c._id);
        if (m) taken.set(m[1]!, Math.max(taken.get(m[1]!) ?? 0, Number(m[2])));
      }
      for (const x of resend) {
        let n = (taken.get(x.key) ?? 0) + 1;
        while (!(await claimMany([{ key: `${x.key}:resend:${n}`, merchantId: x.merchant._id, date: x.r.date, kind: 'recap-resend' }], now)).size) n++;
        x.r.outcome = 'resent';
        jobs.push({ merchant: x.merchant, date: x.r.date, key: `${x.key}:resend:${n}`, r: x.r });
      }
    } else {
      for (const x of resend) {
        x.r.outcome = 'skipped';
        opts.progress?.(x.r);
      }
    }
    for (const x of ready) {
      if (!won.has(x.key)) continue;
      x.r.outcome = 'sent';
      jobs.push({ merchant: x.merchant, date: x.r.date, key: x.key, r: x.r });
    }
    await enqueueAll(jobs, now, (i) => opts.progress?.(jobs[i]!.r), {}, (i, err) => {
      const r = jobs[i]!.r;
      delete r.outcome;
      r.error = err;
      opts.progress?.(r);
    });
    return results;
  }

  /** One recap: see sendMany; throws its AppError. */
  async function send(merchantId: string, date: string, opts: { force?: boolean; now?: Date } = {}): Promise<SendOutcome> {
    if (!isLocalDate(date)) throw new AppError('RECAP_DATE_INVALID', `expected a date as YYYY-MM-DD, got "${date}"`);
    const [r] = await sendMany([{ merchantId, date }], opts);
    if (r!.error) throw r!.error;
    return r!.outcome!;
  }

  return { buildRecap, buildRecaps, dueDates, runDue, send, sendMany, recover };
}

export type RecapService = ReturnType<typeof createRecapService>;
