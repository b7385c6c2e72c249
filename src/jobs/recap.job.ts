// Runs the daily recap every minute: each pass enqueues the recaps whose local recap hour has
// passed (including days missed while the service was down) and finishes claims left by a run
// that died. Any number of instances may run it at once: claims decide (src/services/recap.service.ts).
import { type Logger } from '../logger.ts';
import { createRecapService, type RecapService } from '../services/recap.service.ts';
import { createPollLoop } from './poll-loop.ts';
import { type Repositories } from '../db/repositories.ts';

export interface RecapJobDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  mailDomain: string;
  logger: Logger;
  intervalMs?: number;
  now?: () => Date;
  owner?: string;
  recap?: RecapService;
}

export function createRecapJob(deps: RecapJobDeps) {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'recap-job' });
  const recap =
    deps.recap ?? createRecapService({ repos: deps.repos, mailDomain: deps.mailDomain, logger: deps.logger, ...(deps.owner ? { owner: deps.owner } : {}) });

  const runOnce = () => recap.runDue(now());
  const loop = createPollLoop(
    async () => {
      await runOnce();
    },
    deps.intervalMs ?? 60_000,
    (err) => log.error({ err }, 'recap pass failed'),
  );
  return { runOnce, start: () => loop.start(), stop: () => loop.stop() };
}
export type RecapJob = ReturnType<typeof createRecapJob>;
