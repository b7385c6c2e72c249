// Back-office users, their sessions and login attempts.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
import { isValidObjectId } from 'mongoose';
import { nanoid } from 'nanoid';
import { type Role } from '../domain/merchant.ts';
import { LoginFailure } from './models/login-attempt.model.ts';
import { MerchantUser } from './models/merchant-user.model.ts';
import { Session, type SessionDoc } from './models/session.model.ts';

export type { SessionDoc } from './models/session.model.ts';

/** A back-office user as callers see it: the id as a string. */
export interface UserRecord {
  id: string;
  merchantId: string;
  email: string;
  role: Role;
  passwordHash: string;
  /** The user's own back-office language; absent: the merchant's. */
  locale?: string;
  createdAt?: Date;
}

export interface NewUser {
  merchantId: string;
  email: string;
  passwordHash: string;
  role: Role;
}

type StoredUser = NewUser & { _id: unknown; createdAt?: Date; locale?: string | null };
const toRecord = (u: StoredUser): UserRecord => ({
  id: String(u._id),
  merchantId: u.merchantId,
  email: u.email,
  role: u.role,
  passwordHash: u.passwordHash,
  ...(u.locale ? { locale: u.locale } : {}),
  ...(u.createdAt ? { createdAt: u.createdAt } : {}),
});
const record = (u: StoredUser | null): UserRecord | null => (u ? toRecord(u) : null);

/** User ids are ObjectIds in hex; anything else names nobody (and must not reach a cast). */
const isUserId = (id: string) => /^[a-f0-9]{24}$/.test(id) && isValidObjectId(id);

const adminCount = (merchantId: string) => MerchantUser.countDocuments({ merchantId, role: 'admin' }).exec();

export function createUsersRepository() {
  return {
    // ---- users ---------------------------------------------------------------------------------

    async findByEmail(email: string): Promise<UserRecord | null> {
      return record(await MerchantUser.findOne({ email }).lean<StoredUser>());
    },

    async findById(id: string): Promise<UserRecord | null> {
      return isUserId(id) ? record(await MerchantUser.findById(id).lean<StoredUser>()) : null;
    },

    /** A user of this merchant; null for another merchant's user or a malformed id. */
    async findInMerchant(merchantId: string, id: string): Promise<UserRecord | null> {
      return isUserId(id) ? record(await MerchantUser.findOne({ _id: id, merchantId }).lean<StoredUser>()) : null;
    },

    async emailTaken(email: string): Promise<boolean> {
      return !!(await MerchantUser.exists({ email }));
    },

    async listByMerchant(merchantId: string): Promise<UserRecord[]> {
      return (await MerchantUser.find({ merchantId }).sort({ email: 1 }).lean<StoredUser[]>()).map(toRecord);
    },

    countAdmins: adminCount,

    /** The new user's id; null when the e-mail address already has a log-in (unique). */
    async insert(user: NewUser): Promise<string | null> {
      try {
        return String((await MerchantUser.create(user))._id);
      } catch (e) {
        if ((e as { code?: number }).code === 11000) return null;
        throw e;
      }
    },

    /**
     * `from` → `to` for a user of the merchant. 'stale': the role was not `from` any more. Keeps
     * the merchant's last admin: the count after the write sees every concurrent demotion or
     * removal, and the change is undone when none is left ('last-admin'); a check before the write
     * alone would let two admins demote or remove each other at once.
     */
    async changeRole(merchantId: string, id: string, from: Role, to: Role): Promise<'changed' | 'stale' | 'last-admin'> {
      if (!isUserId(id)) return 'stale';
      if ((await MerchantUser.updateOne({ _id: id, merchantId, role: from }, { $set: { role: to } })).modifiedCount !== 1) return 'stale';
      if (from === 'admin' && to !== 'admin' && (await adminCount(merchantId)) === 0) {
        await MerchantUser.updateOne({ _id: id, merchantId, role: to }, { $set: { role: 'admin' } });
        return 'last-admin';
      }
      return 'changed';
    },

    /**
     * Removes the user and ends their sessions. 'gone': no such user; 'last-admin': they were the
     * merchant's last admin (checked after the delete, as changeRole; the user is put back).
     */
    async remove(merchantId: string, id: string): Promise<'removed' | 'gone' | 'last-admin'> {
      if (!isUserId(id)) return 'gone';
      // The deleted document as it was when deleted: its role then decides, and it can be put back.
      const user = await MerchantUser.findOneAndDelete({ _id: id, merchantId }).lean<StoredUser>();
      if (!user) return 'gone';
      if (user.role === 'admin' && (await adminCount(merchantId)) === 0) {
        await MerchantUser.collection.insertOne(user as never);
        return 'last-admin';
      }
      // Their open sessions end now (a session of a removed user is refused anyway).
      await Session.deleteMany({ userId: id });
      return 'removed';
    },

    /** Replaces the password hash that was checked; false when it changed meanwhile. */
    async changePasswordHash(id: string, checkedHash: string, passwordHash: string): Promise<boolean> {
      if (!isUserId(id)) return false;
      return (await MerchantUser.updateOne({ _id: id, passwordHash: checkedHash }, { $set: { passwordHash } })).modifiedCount === 1;
    },

    /** Sets (or, with undefined, clears) the user's back-office language. */
    async setLocale(merchantId: string, id: string, locale: string | undefined): Promise<boolean> {
      if (!isUserId(id)) return false;
      const update = locale ? { $set: { locale } } : { $unset: { locale: 1 } };
      return (await MerchantUser.updateOne({ _id: id, merchantId }, update)).matchedCount === 1;
    },

    // ---- sessions ------------------------------------------------------------------------------

    async createSession(s: SessionDoc): Promise<void> {
      await Session.create(s);
    },

    findSession: (id: string) => Session.findById(id).lean<SessionDoc>().exec(),

    /**
     * Slides a session's expiry, from the last use that was read; a concurrent touch wins and
     * this one does nothing (it would have written nearly the same times).
     */
    async touchSession(id: string, seenBefore: Date, lastSeenAt: Date, expiresAt: Date): Promise<void> {
      await Session.updateOne({ _id: id, lastSeenAt: seenBefore }, { $set: { lastSeenAt, expiresAt } });
    },

    async endSession(id: string): Promise<void> {
      await Session.deleteOne({ _id: id });
    },

    /** Ends every session of the user but `keep`. */
    async endOtherSessions(userId: string, keep: string): Promise<void> {
      await Session.deleteMany({ userId, _id: { $ne: keep } });
    },

    /** Deletes expired sessions (no TTL index on FerretDB); how many. */
    async pruneSessions(now: Date): Promise<number> {
      return (await Session.deleteMany({ expiresAt: { $lt: now } })).deletedCount;
    },

    // ---- failed log-ins ------------------------------------------------------------------------

    /** One document per failure (inserts are never lost; FerretDB loses concurrent $inc). */
    async recordLoginFailure(email: string, ip: string, at: Date): Promise<void> {
      await LoginFailure.create({ _id: nanoid(), email, ip, at });
    },

    countLoginFailures: (by: { email: string } | { ip: string }, since: Date) => LoginFailure.countDocuments({ ...by, at: { $gt: since } }).exec(),

    /** When the latest failure since `since` happened, if any did. */
    async lastLoginFailureAt(by: { email: string } | { ip: string }, since: Date): Promise<Date | undefined> {
      const last = await LoginFailure.findOne({ ...by, at: { $gt: since } }, { at: 1 }).sort({ at: -1 }).lean<{ at: Date }>();
      return last?.at;
    },

    /** A successful log-in forgives the account's failures. */
    async forgiveLoginFailures(email: string): Promise<void> {
      await LoginFailure.deleteMany({ email });
    },

    async pruneLoginFailures(before: Date): Promise<number> {
      return (await LoginFailure.deleteMany({ at: { $lt: before } })).deletedCount;
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
