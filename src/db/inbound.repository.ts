// Inbound messages: raw storage and their processing state.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createInboundRepository() {
  return {};
}

export type InboundRepository = ReturnType<typeof createInboundRepository>;
