// Prunes what only matters for a while (src/db/retention.ts): claims, sessions, login attempts,
// rate-limit records, bodies of sent mails. Hourly; any number of instances may run it (deletes of
// old records are idempotent).
import { type Repositories } from '../db/repositories.ts';
import { type RetentionAges } from '../db/retention.ts';
import { type Logger } from '../logger.ts';
import { createPollLoop } from './poll-loop.ts';

export interface RetentionJobDeps {
  /** The storage seam (src/db/repositories.ts). */
  repos: Repositories;
  ages: RetentionAges;
  logger: Logger;
  intervalMs?: number;
  now?: () => Date;
}

export function createRetentionJob(deps: RetentionJobDeps) {
  const now = deps.now ?? (() => new Date());
  const log = deps.logger.child({ component: 'retention' });
  const runOnce = async () => {
    const pruned = await deps.repos.retention.prune(deps.ages, now());
    if (Object.values(pruned).some((n) => n > 0)) log.info({ pruned }, 'old records pruned');
    return pruned;
  };
  const loop = createPollLoop(
    async () => {
      await runOnce();
    },
    deps.intervalMs ?? 3_600_000,
    (err) => log.error({ err }, 'retention pass failed'),
  );
  return { runOnce, start: () => loop.start(), stop: () => loop.stop() };
}
export type RetentionJob = ReturnType<typeof createRetentionJob>;
