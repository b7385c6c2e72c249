// Outgoing mail: the durable outbox and its due queue.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createOutboxRepository() {
  return {};
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>;
