// Orders with their payment, attempts and history; refunds; 3-D Secure challenges.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createOrdersRepository() {
  return {};
}

export type OrdersRepository = ReturnType<typeof createOrdersRepository>;
