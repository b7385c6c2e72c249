// What the database engine guarantees, learned once at connect (`buildInfo`), so that the few
// engine-specific tricks stay inside src/db and production pays only for what its engine needs.
//
// MongoDB (production: a replica set) applies a conditional single-document update atomically:
// `findOneAndUpdate({_id, attempts: 3, status: 'pending'}, …)` has one winner. FerretDB v1 (the
// embedded development and test engine) applies it as read-modify-write without a lock
// (FerretDB#2168; measured in src/db/claims.ts), so there a claim — an insert under a unique _id,
// atomic on both — referees the take first. The lease referees (src/db/claims.ts, refereeLease)
// ask this module and insert nothing on MongoDB.
//
// Until a connection says otherwise the engine is taken to be FerretDB-like: the referee is on,
// which is correct on both engines (only slower on MongoDB).
import type mongoose from 'mongoose';

export interface EngineGuarantees {
  /** 'mongodb', 'ferretdb', or 'unknown' before a connection was described. */
  name: 'mongodb' | 'ferretdb' | 'unknown';
  /** Server version as reported (FerretDB: its own version). */
  version?: string;
  /** Whether a conditional single-document update has exactly one winner among concurrent callers. */
  atomicConditionalUpdates: boolean;
}

const UNKNOWN: EngineGuarantees = { name: 'unknown', atomicConditionalUpdates: false };
let current: EngineGuarantees = UNKNOWN;

export const engineGuarantees = (): EngineGuarantees => current;

/** True when a conditional update referees a race by itself (MongoDB); false: a claim must (FerretDB). */
export const conditionalUpdatesAreAtomic = (): boolean => current.atomicConditionalUpdates;

/** What `buildInfo` says about the engine: FerretDB answers with `ferretdbVersion` (or `ferretdb.version`). */
export function guaranteesOf(info: { version?: string; ferretdbVersion?: string; ferretdb?: { version?: string } }): EngineGuarantees {
  const ferret = info.ferretdbVersion ?? info.ferretdb?.version;
  if (ferret) return { name: 'ferretdb', version: ferret, atomicConditionalUpdates: false };
  return { name: 'mongodb', ...(info.version ? { version: info.version } : {}), atomicConditionalUpdates: true };
}

/** Reads the connected server's `buildInfo` and sets the guarantees every repository follows from now on. */
export async function describeEngine(connection: mongoose.Connection): Promise<EngineGuarantees> {
  const info = (await connection.db!.admin().command({ buildInfo: 1 })) as Parameters<typeof guaranteesOf>[0];
  current = guaranteesOf(info);
  return current;
}

/**
 * Sets the guarantees directly: for tests that run the MongoDB path's logic on the embedded engine
 * (one worker at a time, where atomicity is not at stake). Returns the previous value to restore.
 */
export function setEngineGuarantees(g: EngineGuarantees): EngineGuarantees {
  const before = current;
  current = g;
  return before;
}
