// The sandbox acquirer's card vault (src/domain/sandbox-vault.ts): one document per token, looked
// up by primary key only. Removing a card deletes its document.
import { type SandboxVaultEntry, type SandboxVaultStore } from '../domain/sandbox-vault.ts';
import { CardVaultEntry, type CardVaultDoc } from './models/card-vault.model.ts';

function entryOf(d: CardVaultDoc): SandboxVaultEntry {
  const behaviour: SandboxVaultEntry['behaviour'] =
    d.outcome === 'declined'
      ? { outcome: 'declined', declineCode: d.declineCode as never, message: d.message ?? '' }
      : { outcome: d.outcome as 'approved' | 'challenge' };
  return { token: d._id, last4: d.last4, behaviour, status: d.status as SandboxVaultEntry['status'], createdAt: d.createdAt };
}

export function createCardVaultRepository(): SandboxVaultStore {
  return {
    async put(entry) {
      const b = entry.behaviour;
      try {
        await CardVaultEntry.create({
          _id: entry.token,
          last4: entry.last4,
          outcome: b.outcome,
          ...(b.outcome === 'declined' ? { declineCode: b.declineCode, message: b.message } : {}),
          status: entry.status,
          createdAt: entry.createdAt,
        });
      } catch (e) {
        if ((e as { code?: number }).code !== 11000) throw e;
      }
    },
    async active(token) {
      const d = await CardVaultEntry.findOne({ _id: token, status: 'active' }).lean<CardVaultDoc>();
      return d ? entryOf(d) : null;
    },
    async activate(token) {
      await CardVaultEntry.updateOne({ _id: token, status: 'pending' }, { $set: { status: 'active' } });
      const d = await CardVaultEntry.findById(token).lean<CardVaultDoc>();
      return d ? entryOf(d) : null;
    },
    async remove(token) {
      await CardVaultEntry.deleteOne({ _id: token });
    },
  };
}

export type CardVaultRepository = ReturnType<typeof createCardVaultRepository>;
