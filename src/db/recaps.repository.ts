// Daily recaps: which merchant-days were mailed.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createRecapsRepository() {
  return {};
}

export type RecapsRepository = ReturnType<typeof createRecapsRepository>;
