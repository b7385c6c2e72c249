// Once-only claims refereed by a unique _id.
//
// FerretDB v1 (our embedded and test database) applies an update as read-modify-write without a
// lock (upstream issue FerretDB#2168): two concurrent `findOneAndUpdate({status: 'pending'}, …)`
// calls can both "win", and concurrent `$inc`s lose counts (measured here: 28 of 30 rounds of six
// racing conditional updates had several winners). An insert under a unique _id is atomic on
// FerretDB and MongoDB alike, so every transition that must happen once (a payment closing an
// order, a worker taking a message) first inserts a claim; only the inserter proceeds.
import mongoose, { Schema } from 'mongoose';
import { conditionalUpdatesAreAtomic } from './engine.ts';

const ClaimSchema = new Schema(
  {
    _id: { type: String, required: true },
    at: { type: Date, required: true },
    owner: { type: String },
    /** What the winner is about to apply, so a crash between claim and apply can be repaired. */
    kind: { type: String },
    subject: { type: String },
    payload: { type: Schema.Types.Mixed },
    applied: { type: Boolean, default: false },
  },
  { versionKey: false },
);
ClaimSchema.index({ kind: 1, applied: 1, at: 1 });
// Which recap days are claimed already (src/db/recaps.repository.ts, claimedKeys).
ClaimSchema.index({ kind: 1, 'payload.date': 1 });

export const Claim = mongoose.model('Claim', ClaimSchema, 'claims');

export interface ClaimInfo {
  owner?: string;
  kind?: string;
  subject?: string;
  payload?: Record<string, unknown>;
}

/** Inserts the claim `key`; true for exactly one caller across all processes. */
export async function claimOnce(key: string, info: ClaimInfo = {}, now = new Date()): Promise<boolean> {
  try {
    await Claim.create({ _id: key, at: now, ...info, applied: false });
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === 11000) return false;
    throw e;
  }
}

export async function markApplied(key: string): Promise<void> {
  await Claim.updateOne({ _id: key }, { $set: { applied: true } });
}

/** Claims made more than `olderThanMs` ago whose effect was never marked applied. */
export async function unappliedClaims(kind: string, olderThanMs: number, now = new Date()) {
  return Claim.find({ kind, applied: false, at: { $lt: new Date(now.getTime() - olderThanMs) } })
    .sort({ at: 1 })
    .limit(500)
    .lean();
}

/**
 * A claim that expires: for work items whose holder may die between claiming and recording the
 * claim in the item (crash, lost write). `key` is taken if nobody holds it; if the newest holder's
 * claim is older than `leaseMs` and the caller still sees the item unchanged, the next generation
 * (`key:g1`, `key:g2`, …) is claimed instead — again an insert, so exactly one caller takes over.
 * Callers must re-check the item after winning (its state decides, the claim only referees).
 */
export async function claimLease(key: string, leaseMs: number, info: ClaimInfo = {}, now = new Date()): Promise<boolean> {
  if (await claimOnce(key, info, now)) return true;
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const held = await Claim.find({ _id: { $regex: `^${escaped}(:g\\d+)?$` } }, { _id: 1, at: 1 }).lean<Array<{ _id: string; at: Date }>>();
  let newest = { gen: 0, at: new Date(0) };
  for (const c of held) {
    const gen = Number(/:g(\d+)$/.exec(c._id)?.[1] ?? 0);
    if (gen >= newest.gen) newest = { gen, at: new Date(c.at) };
  }
  if (now.getTime() - newest.at.getTime() < leaseMs) return false;
  return claimOnce(`${key}:g${newest.gen + 1}`, info, now);
}

/**
 * The referee of a take that a conditional update then makes (a queue item's lease, a secret's
 * rotation): a claimLease on FerretDB, whose conditional updates are not atomic; nothing on
 * MongoDB, where the conditional update that follows has one winner by itself (src/db/engine.ts).
 * Either way the caller goes on to that conditional update and trusts only its result.
 */
export async function refereeLease(key: string, leaseMs: number, info: ClaimInfo = {}, now = new Date()): Promise<boolean> {
  if (conditionalUpdatesAreAtomic()) return true;
  return claimLease(key, leaseMs, info, now);
}
