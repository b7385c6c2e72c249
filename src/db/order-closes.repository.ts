// How an order closes — paid, expired or cancelled — decided once, and the customer's first view
// of the checkout, recorded once: the journal the order transitions write before they apply
// anything (src/services/order-transitions.ts), and that their crash repair replays.
//
// A decision is a claim (src/db/claims.ts): a document inserted under a key per order and part,
// carrying what the transition is about to apply (the payment, the expiry instant, who cancelled).
// Its insert has one winner on every engine, so it is also the referee FerretDB needs (its
// conditional updates are not atomic); its payload is what lets a crash between the decision and
// the update be finished instead of leaving a charged card on an unpaid order. Callers speak of
// orders, parts and ways of closing; the keys, kinds and collection stay in this file.
import { Claim, claimOnce, markApplied, unappliedClaims } from './claims.ts';

/** The ways an order (or one part of a plan order) closes. */
export type CloseWay = 'paid' | 'expired' | 'cancelled';

/** Stored claim kinds, one per way (kept as stored since the first release). */
const KIND: Record<CloseWay, string> = { paid: 'order-close', expired: 'order-expire', cancelled: 'order-cancel' };
const WAY_OF_KIND = new Map(Object.entries(KIND).map(([way, kind]) => [kind, way as CloseWay]));
const VIEWED_KIND = 'order-viewed';

/**
 * The key of the decision that closes part `seq` of an order: the payment of part `seq` and a
 * cancellation while `seq` is the next part to pay contend for it (part 1's is the order's first
 * close key, so an order without plan is part 1 of 1).
 */
export const partCloseClaimKey = (orderId: string, seq: number): string => (seq <= 1 ? `order:${orderId}:close` : `order:${orderId}:close:${seq}`);
export const closeClaimKey = (orderId: string): string => partCloseClaimKey(orderId, 1);
/** The key of the record of the customer's first interaction with the checkout. */
export const viewedClaimKey = (orderId: string): string => `order:${orderId}:viewed`;

/** A close as decided. `payload` is what the decider stored for the transition's next steps. */
export interface CloseDecision<P = Record<string, unknown>> {
  way?: CloseWay;
  owner?: string;
  payload?: P;
  at: Date;
  /** The transition is finished: its state change applied and its side effects queued. */
  applied: boolean;
}

/** A decision whose transition was never marked finished (its process died, or a write failed). */
export interface UnfinishedClose<P = Record<string, unknown>> {
  orderId: string;
  at: Date;
  payload?: P;
}

export function createOrderClosesRepository() {
  const unfinished = async <P>(kind: string, olderThanMs: number, at: Date): Promise<Array<UnfinishedClose<P>>> =>
    (await unappliedClaims(kind, olderThanMs, at)).map((c) => ({ orderId: String(c.subject), at: new Date(c.at), ...(c.payload ? { payload: c.payload as P } : {}) }));

  return {
    /**
     * Decides that part `seq` of the order closes `way`, with `payload` for the next steps; true for
     * exactly one caller across all processes (the first), false when it was decided already.
     */
    decide: (orderId: string, seq: number, way: CloseWay, payload: Record<string, unknown>, at: Date, owner?: string): Promise<boolean> =>
      claimOnce(partCloseClaimKey(orderId, seq), { kind: KIND[way], subject: orderId, ...(owner ? { owner } : {}), payload }, at),

    /** How part `seq` of the order was decided to close, or null while it is not. */
    async decision<P = Record<string, unknown>>(orderId: string, seq: number): Promise<CloseDecision<P> | null> {
      const c = await Claim.findById(partCloseClaimKey(orderId, seq)).lean<{ kind?: string; owner?: string; payload?: P; at: Date; applied?: boolean }>();
      if (!c) return null;
      const way = c.kind ? WAY_OF_KIND.get(c.kind) : undefined;
      return { ...(way ? { way } : {}), ...(c.owner ? { owner: c.owner } : {}), ...(c.payload ? { payload: c.payload } : {}), at: new Date(c.at), applied: c.applied === true };
    },

    /** The close of part `seq` is finished (state applied, side effects queued). */
    done: (orderId: string, seq: number): Promise<void> => markApplied(partCloseClaimKey(orderId, seq)),

    /** Closes decided `way` more than `olderThanMs` ago and never finished: for the crash repair. */
    unfinished: <P = Record<string, unknown>>(way: CloseWay, olderThanMs: number, at: Date) => unfinished<P>(KIND[way], olderThanMs, at),

    /** An expired order's expiry is undone by its renewal: the order may close again. */
    async undoExpiry(orderId: string): Promise<boolean> {
      return (await Claim.deleteOne({ _id: closeClaimKey(orderId), kind: KIND.expired })).deletedCount > 0;
    },

    /** Records the customer's first interaction at `at`; true for exactly one caller, ever. */
    decideViewed: (orderId: string, at: Date): Promise<boolean> => claimOnce(viewedClaimKey(orderId), { kind: VIEWED_KIND, subject: orderId, payload: { viewedAt: at } }, at),
    viewedDone: (orderId: string): Promise<void> => markApplied(viewedClaimKey(orderId)),
    unfinishedViews: (olderThanMs: number, at: Date) => unfinished<{ viewedAt?: Date }>(VIEWED_KIND, olderThanMs, at),
  };
}

export type OrderClosesRepository = ReturnType<typeof createOrderClosesRepository>;
