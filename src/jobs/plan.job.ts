// Orders paid in parts (issue 13 part 1): every interval, the parts whose date came are asked for
// (their pay-link goes out: src/services/plan.service.ts), and openings a crash interrupted are
// finished. One indexed query per pass ({status: 'partially_paid', plan.nextDueAt <= now}).
import { type Logger } from '../logger.ts';
import { type PlanService } from '../services/plan.service.ts';
import { createPollLoop } from './poll-loop.ts';

export interface PlanJobDeps {
  plans: PlanService;
  logger: Logger;
  intervalMs?: number;
}

export function createPlanJob(deps: PlanJobDeps) {
  const log = deps.logger.child({ component: 'plan-job' });
  async function runOnce(): Promise<{ opened: number; repaired: number }> {
    const repaired = await deps.plans.repair();
    const opened = await deps.plans.openDue();
    if (opened || repaired) log.info({ opened, repaired }, 'parts due asked for');
    return { opened, repaired };
  }
  const loop = createPollLoop(async () => void (await runOnce()), deps.intervalMs ?? 60_000, (err) => log.error({ err }, 'plan job failed'));
  return { runOnce, start: () => loop.start(), stop: () => loop.stop() };
}
