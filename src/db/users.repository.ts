// Back-office users, their sessions and login attempts.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
export function createUsersRepository() {
  return {};
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
