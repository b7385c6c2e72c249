// Webhook deliveries and their due queue.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createWebhooksRepository() {
  return {};
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
