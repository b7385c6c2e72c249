// Merchants: settings, aliases, secrets (webhook, seal, SMTP), suspension.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createMerchantsRepository() {
  return {};
}

export type MerchantsRepository = ReturnType<typeof createMerchantsRepository>;
