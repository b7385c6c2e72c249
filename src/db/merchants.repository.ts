// Merchants: settings, aliases, secrets (webhook, seal, SMTP), suspension.
// All database access for this aggregate; callers get it injected (src/db/repositories.ts).
//
// Every change that depends on the current state is one update with that state in the filter
// (`{_id, status: 'active'}`, `{_id, sealKey: <the key read>}`), so on MongoDB it is atomic. On
// FerretDB such updates are read-modify-write (src/db/claims.ts), so secret rotations, the one
// transition here whose loser must retry, are also refereed by a claim on the value they replace.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { refereeLease } from './claims.ts';
import { Merchant, type MerchantDoc } from './models/merchant.model.ts';
import { type AcquirerName, type DeliveryMode } from '../domain/merchant.ts';

export type { MerchantDoc } from './models/merchant.model.ts';

/** What the MX door needs to know about the merchant behind an alias. */
export interface MxMerchant {
  id: string;
  senderDomains: readonly string[];
  /** Suspended by the operator: its mail is refused with 550 5.7.1 at RCPT. */
  suspended?: boolean;
}

/** The settings an admin edits in the back office; `webhookUrl` undefined removes it. */
export interface MerchantSettings {
  delivery: DeliveryMode;
  linkLifetimeDays: number;
  locale: string;
  timezone: string;
  recapHour: number;
  senderDomains: string[];
  webhookUrl?: string;
}

/** A new merchant as stored (defaults from the schema fill the rest). */
export type NewMerchant = Pick<
  MerchantDoc,
  '_id' | 'name' | 'email' | 'alias' | 'senderDomains' | 'currency' | 'locale' | 'timezone' | 'delivery' | 'linkLifetimeDays' | 'webhookSecret' | 'smtpUser' | 'smtpPasswordHash'
> & { webhookUrl?: string; sealKey?: string };

/** Stripe credentials to store (encrypted by the caller); null removes a field, undefined keeps it. */
export interface StripeCredentialsUpdate {
  secretKeyEnc?: string;
  secretKeyHint?: string;
  secretKeyRestricted?: boolean;
  webhookSecretEnc?: string | null;
  webhookSecretHint?: string | null;
  apiBase?: string | null;
}

/** The fields a webhook attempt signs and sends with (read per attempt). */
export type MerchantWebhookTarget = Pick<MerchantDoc, '_id' | 'webhookUrl' | 'webhookSecret' | 'previousWebhookSecret' | 'previousSecretUntil' | 'status'>;

/** A secret and where its predecessor and the predecessor's grace period are kept. */
const SECRETS = {
  webhook: { current: 'webhookSecret', previous: 'previousWebhookSecret', until: 'previousSecretUntil' },
  seal: { current: 'sealKey', previous: 'previousSealKey', until: 'previousSealKeyUntil' },
} as const;
type SecretKind = keyof typeof SECRETS;

/** How long a rotation's claim on the value it replaces is held before another may take over. */
const ROTATION_LEASE_MS = 10_000;
const ROTATION_TRIES = 200;

const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

export function createMerchantsRepository() {
  /**
   * Makes `next` the current secret; the one it replaces stays valid as the previous one until
   * `previousUntil`. Two rotations at once both end valid: the second replaces the first's key,
   * never the key both read (a read-then-write would drop one of the keys it handed out).
   * False when the merchant does not exist.
   */
  async function rotateSecret(kind: SecretKind, id: string, next: string, previousUntil: Date): Promise<boolean> {
    const f = SECRETS[kind];
    for (let attempt = 0; attempt < ROTATION_TRIES; attempt++) {
      const m = await Merchant.findById(id, { [f.current]: 1 }).lean<Record<string, string | undefined>>();
      if (!m) return false;
      const current = m[f.current];
      // The referee FerretDB needs: one rotation per replaced value (an insert is atomic there; on
      // MongoDB the conditional update below referees by itself and no claim is inserted).
      if (await refereeLease(`rotate:${kind}:${id}:${digest(current ?? '')}`, ROTATION_LEASE_MS, { kind: 'merchant-rotation', subject: id })) {
        const r = await Merchant.updateOne(
          { _id: id, [f.current]: current ?? { $exists: false } },
          current ? { $set: { [f.current]: next, [f.previous]: current, [f.until]: previousUntil } } : { $set: { [f.current]: next } },
        );
        if (r.modifiedCount === 1) return true;
      }
      // Another rotation replaced (or is replacing) that value: rotate what it left.
      await sleep(Math.min(5 + attempt * 5, 100));
    }
    throw new Error(`merchant ${id}: ${kind} secret rotation did not settle`);
  }

  return {
    findById: (id: string) => Merchant.findById(id).lean<MerchantDoc>().exec(),

    /** The SMTP submission log-in's merchant (user names are stored lower-case). */
    findBySmtpUser: (user: string) => Merchant.findOne({ smtpUser: user.toLowerCase() }).lean<MerchantDoc>().exec(),

    /** The MX door's directory: the merchant owning an alias (lower case), or undefined. */
    async findByAlias(alias: string): Promise<MxMerchant | undefined> {
      const m = await Merchant.findOne({ alias }, { _id: 1, senderDomains: 1, status: 1 }).lean<{ _id: string; senderDomains?: string[]; status?: string }>();
      return m ? { id: m._id, senderDomains: m.senderDomains ?? [], suspended: m.status === 'suspended' } : undefined;
    },

    /** Every merchant, oldest first (the operator's list). */
    listAll: () => Merchant.find({}).sort({ createdAt: 1 }).lean<Array<MerchantDoc & { createdAt?: Date }>>().exec(),

    /** The webhook target and signing secrets, read per attempt (a fix or rotation applies at once). */
    webhookTarget: (id: string) =>
      Merchant.findById(id, { webhookUrl: 1, webhookSecret: 1, previousWebhookSecret: 1, previousSecretUntil: 1, status: 1 }).lean<MerchantWebhookTarget>().exec(),

    /** A fresh read (never cached): a suspension must take effect at once. */
    async isSuspended(id: string): Promise<boolean> {
      const m = await Merchant.findById(id, { status: 1 }).lean<Pick<MerchantDoc, 'status'>>();
      return m?.status === 'suspended';
    },

    async insert(doc: NewMerchant): Promise<void> {
      await Merchant.create(doc);
    },

    /** Undoes insert() when the rest of a creation failed. */
    async remove(id: string): Promise<void> {
      await Merchant.deleteOne({ _id: id });
    },

    /** Saves the back-office settings; the merchant as it is now, or null when it is gone. */
    updateSettings(id: string, s: MerchantSettings): Promise<MerchantDoc | null> {
      const { webhookUrl, ...rest } = s;
      return Merchant.findOneAndUpdate(
        { _id: id },
        { $set: { ...rest, ...(webhookUrl ? { webhookUrl } : {}) }, ...(webhookUrl ? {} : { $unset: { webhookUrl: 1 } }) },
        { returnDocument: 'after' },
      )
        .lean<MerchantDoc>()
        .exec();
    },

    /** The reminder and renewal settings (issue 13 parts 3 and 4). */
    updateReminderSettings(id: string, s: { remindersEnabled: boolean; reminderDaysBefore: number[]; unopenedReminderHours: number; autoRenewDays: number }): Promise<MerchantDoc | null> {
      return Merchant.findOneAndUpdate({ _id: id }, { $set: s }, { returnDocument: 'after' }).lean<MerchantDoc>().exec();
    },

    /** A new webhook secret; the current one keeps signing until `previousUntil`. False: no such merchant. */
    rotateWebhookSecret: (id: string, secret: string, previousUntil: Date) => rotateSecret('webhook', id, secret, previousUntil),

    /** Saved cards on or off (issue 12 part 3); the merchant as it is now, or null when it is gone. */
    setSavedCards: (id: string, enabled: boolean) =>
      Merchant.findOneAndUpdate({ _id: id }, { $set: { savedCardsEnabled: enabled } }, { returnDocument: 'after' }).lean<MerchantDoc>().exec(),

    /** A new seal key; the current one (if any) keeps verifying until `previousUntil`. False: no such merchant. */
    rotateSealKey: (id: string, sealKey: string, previousUntil: Date) => rotateSecret('seal', id, sealKey, previousUntil),

    /**
     * Active → suspended; null when the merchant was not active (already suspended, or gone). Not
     * refereed on FerretDB: two suspensions in the same instant may both apply there, and the later
     * one's time and reason stay (nothing a caller relies on).
     */
    suspend(id: string, at: Date, reason?: string): Promise<MerchantDoc | null> {
      return Merchant.findOneAndUpdate(
        // Not `status: 'active'`: merchants stored before the status field count as active.
        { _id: id, status: { $ne: 'suspended' } },
        { $set: { status: 'suspended', suspendedAt: at, ...(reason ? { suspendedReason: reason } : {}) }, ...(reason ? {} : { $unset: { suspendedReason: 1 } }) },
        { returnDocument: 'after' },
      )
        .lean<MerchantDoc>()
        .exec();
    },

    /**
     * The merchant's acquirer and, when given, new Stripe credentials (already encrypted; fields
     * not given stay as they are). The merchant as it is now, or null when it is gone.
     */
    setAcquirer(id: string, acquirer: AcquirerName, stripe: StripeCredentialsUpdate = {}): Promise<MerchantDoc | null> {
      const set: Record<string, unknown> = { acquirer };
      const unset: Record<string, 1> = {};
      for (const [k, v] of Object.entries(stripe)) {
        if (v === null) unset[`stripe.${k}`] = 1;
        else if (v !== undefined) set[`stripe.${k}`] = v;
      }
      return Merchant.findOneAndUpdate({ _id: id }, { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}) }, { returnDocument: 'after' })
        .lean<MerchantDoc>()
        .exec();
    },

    /** Suspended → active; null when the merchant was not suspended (already active, or gone). */
    resume(id: string): Promise<MerchantDoc | null> {
      return Merchant.findOneAndUpdate({ _id: id, status: 'suspended' }, { $set: { status: 'active' }, $unset: { suspendedAt: 1, suspendedReason: 1 } }, { returnDocument: 'after' })
        .lean<MerchantDoc>()
        .exec();
    },
  };
}

export type MerchantsRepository = ReturnType<typeof createMerchantsRepository>;
