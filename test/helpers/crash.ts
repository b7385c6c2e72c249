// A crash at a fault point (src/services/order-transitions.ts FAULT_POINTS, the plan service's
// part:* points): the hook throws there, as a process dying at that step would stop the work.
import { type FaultHook } from '../../src/services/order-transitions.ts';

export class Crash extends Error {
  override name = 'Crash';
}

/** Throws a Crash at `point`, nowhere else. */
export const crashAt =
  (point: string): FaultHook =>
  (p) => {
    if (p === point) throw new Crash(p);
  };
