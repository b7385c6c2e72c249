// Abuse brakes: rate-limit records, SMTP AUTH failures, reply brakes, sealed-request nonces.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createLimitsRepository() {
  return {};
}

export type LimitsRepository = ReturnType<typeof createLimitsRepository>;
