// What the checkout's parts share: the clock, the per-order queue, the rate limits and the order
// transitions, built once per checkout service from its deps.
import { createOrderTransitions } from '../order-transitions.ts';
import { DEFAULT_CHALLENGE_TTL_MS, DEFAULT_RATE_LIMITS, type CheckoutServiceDeps, type RateLimits } from './types.ts';

/** Runs tasks with the same key one after another (a per-order queue within this process). */
function createKeyedQueue() {
  const tails = new Map<string, Promise<void>>();
  return async function run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

export function createCheckoutCore(deps: CheckoutServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const serialised = createKeyedQueue();
  const limits: RateLimits = { ...DEFAULT_RATE_LIMITS, ...deps.limits };
  const challengeTtlMs = deps.challengeTtlMs ?? DEFAULT_CHALLENGE_TTL_MS;
  const transitions = createOrderTransitions({ repos: deps.repos,
    events: deps.events,
    mailDomain: deps.mailDomain,
    linkFor: deps.linkFor,
    proofs: deps.proofs,
    cardRemovalUrl: deps.cardRemovalUrl,
    faults: deps.faults,
    now,
  });
  const fault = transitions.fault;
  return { now, serialised, limits, challengeTtlMs, transitions, fault };
}
export type CheckoutCore = ReturnType<typeof createCheckoutCore>;
