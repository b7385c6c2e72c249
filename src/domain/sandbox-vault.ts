// The persistence port of the sandbox acquirer's card vault (issue 12 part 3). The sandbox plays a
// bank, and a bank keeps saved cards in its own vault; so that any instance, and any instance
// after a restart, can charge a card another one saved, the vault is stored (src/db/
// card-vault.repository.ts) rather than kept in memory. What is stored for a sandbox test card is
// what it is scripted to answer later and its last four digits: never the number or the CVC.
import { type DeclineCode } from './acquirer.ts';

/** What a later charge of a saved sandbox card answers. */
export type SavedBehaviour =
  | { outcome: 'approved' }
  | { outcome: 'declined'; declineCode: DeclineCode; message: string }
  /** The issuer wants 3-D Secure on every payment (one-click: a challenge; merchant-initiated: AUTHENTICATION_REQUIRED). */
  | { outcome: 'challenge' };

export interface SandboxVaultEntry {
  token: string;
  last4: string;
  behaviour: SavedBehaviour;
  /** pending: saved by an authorisation still waiting for its 3-D Secure challenge to pass. */
  status: 'pending' | 'active';
  createdAt: Date;
}

export interface SandboxVaultStore {
  /** Stores an entry; storing the same token again is a no-op. */
  put(entry: SandboxVaultEntry): Promise<void>;
  /** The active entry of `token`; null when unknown, pending or removed. */
  active(token: string): Promise<SandboxVaultEntry | null>;
  /** pending → active (idempotent); the entry, or null when there is none. */
  activate(token: string): Promise<SandboxVaultEntry | null>;
  remove(token: string): Promise<void>;
}
