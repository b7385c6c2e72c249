// `paymail recap send --merchant ID [--date YYYY-MM-DD] [--force]` and `paymail recap send --all …`
// Sends (backfills) the daily recap of a local day, or with --force sends it again under a new
// dedupe key. Mail is enqueued in the outbox; a running paymail sends it. Progress ("3/12
// merchants") goes to stderr on a terminal; one result line per merchant to stdout, errors to stderr.
// Exit 0 when done, 1 on an error (unknown merchant, day not over), 2 on a usage error.
import { parseArgs } from 'node:util';
import { createRepositories } from '../db/repositories.ts';
import { isLocalDate } from '../domain/local-day.ts';
import { createRecapService } from '../services/recap.service.ts';

export const RECAP_USAGE = '  paymail recap send (--merchant ID | --all) [--date YYYY-MM-DD] [--force]';

export interface RecapCliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** True when stderr is a terminal: progress is redrawn in place. */
  progress?: boolean;
}

export interface RecapCliDeps {
  mailDomain: string;
  /** Opens the database; returns its closer. */
  connect: () => Promise<{ close: () => Promise<void> }>;
  now?: () => Date;
}

export async function runRecapCli(args: string[], io: RecapCliIo, deps: RecapCliDeps): Promise<number> {
  const [command, ...rest] = args;
  let values: { merchant?: string; date?: string; force?: boolean; all?: boolean };
  try {
    if (command !== 'send') throw new Error(`unknown command "recap ${command ?? ''}" (try: paymail help)`);
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options: { merchant: { type: 'string' }, date: { type: 'string' }, force: { type: 'boolean' }, all: { type: 'boolean' } },
    }));
    if (!values.all === !values.merchant) throw new Error('give --merchant ID or --all');
    if (values.date !== undefined && !isLocalDate(values.date)) throw new Error(`--date: expected YYYY-MM-DD, got "${values.date}"`);
  } catch (e) {
    io.err(`paymail: ${(e as Error).message.split('\n')[0]}\n${RECAP_USAGE}\n`);
    return 2;
  }
  const now = deps.now ?? (() => new Date());
  const db = await deps.connect();
  try {
    const repos = createRepositories();
    const recap = createRecapService({ repos, mailDomain: deps.mailDomain, owner: 'cli' });
    const ids = values.all ? await repos.recaps.activeMerchantIds() : [values.merchant!];
    // One call for all: the recaps come from one read of the orders per group of merchants (see recap-build.ts).
    let failed = 0;
    let done = 0;
    await recap.sendMany(
      ids.map((id) => ({ merchantId: id, ...(values.date ? { date: values.date } : {}) })),
      {
        force: values.force === true,
        now: now(),
        progress(r) {
          if (r.error) {
            failed++;
            // Once, on stderr: stdout keeps only the result lines a script reads.
            io.err(`${io.progress ? '\r' : ''}paymail: ${r.merchantId} ${r.date}: ${r.error.code}: ${r.error.message}\n`);
          } else {
            io.out(`${r.merchantId} ${r.date} ${r.outcome === 'skipped' ? 'skipped (already sent; --force sends it again)' : r.outcome}\n`);
          }
          if (io.progress) io.err(`\r${++done}/${ids.length} merchants`);
        },
      },
    );
    if (io.progress) io.err('\n');
    return failed > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}
