// Merchant accounts: creation (credentials shown once, stored as hashes), listing, SMTP log-in.
import { z } from 'zod';
import { AppError } from '../domain/errors.ts';
import { newAlias, newMerchantId, newSecret } from '../domain/ids.ts';
import { isCurrency } from '../domain/money.ts';
import { hashPassword, verifyPassword } from '../domain/password.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';
import { DELIVERY_MODES } from '../domain/merchant.ts';
import { isTimeZone } from '../domain/time-zone.ts';

export const SUPPORTED_LOCALES = ['en', 'it', 'fr', 'de', 'es'] as const;

export const CreateMerchantInput = z.object({
  name: z.string().trim().min(1, 'a name is required').max(120),
  email: z.email('expected an e-mail address').transform((s) => s.toLowerCase()),
  senderDomains: z
    .array(z.string().trim().toLowerCase().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'expected a domain name'))
    .default([]),
  currency: z.string().trim().toUpperCase().refine(isCurrency, 'expected an ISO 4217 currency code').default('EUR'),
  locale: z.enum(SUPPORTED_LOCALES, { message: `expected one of ${SUPPORTED_LOCALES.join(', ')}` }).default('en'),
  timezone: z.string().refine(isTimeZone, 'expected an IANA time zone such as Europe/Rome').default('Europe/Rome'),
  delivery: z.enum(DELIVERY_MODES, { message: 'expected merchant or customer' }).default('merchant'),
  webhookUrl: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional(),
  linkLifetimeDays: z.number().int().min(1).max(60).default(7),
});
export type CreateMerchantInput = z.input<typeof CreateMerchantInput>;

export interface CreatedMerchant {
  id: string;
  name: string;
  email: string;
  alias: string;
  inboundAddress: string;
  smtpUser: string;
  smtpPassword: string;
  adminEmail: string;
  adminPassword: string;
  webhookSecret: string;
  /** Seals website requests to POST /pay/sealed and the buyer's return (README, "Merchant websites"). */
  sealKey: string;
  currency: string;
  locale: string;
  timezone: string;
  delivery: string;
  senderDomains: string[];
  webhookUrl?: string;
}

export function inboundAddress(alias: string, mailDomain: string): string {
  return `orders+${alias}@${mailDomain}`;
}

/** How long the previous seal key still verifies requests after `paymail merchant rotate-seal-key`. */
export const SEAL_KEY_GRACE_MS = 24 * 3600_000;

const newSealKey = () => `seal_${newSecret(32)}`;

export function createMerchantService(deps: { repos: Repositories; mailDomain: string; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  const { merchants, users } = deps.repos;
  const emailTaken = (email: string) => new AppError('MERCHANT_EMAIL_TAKEN', `email: ${email} already has a back-office log-in`, { httpStatus: 409 });
  return {
    async create(input: CreateMerchantInput): Promise<CreatedMerchant> {
      const parsed = CreateMerchantInput.safeParse(input);
      if (!parsed.success) {
        const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
        throw new AppError('MERCHANT_INVALID', msg, { httpStatus: 400, details: parsed.error.issues });
      }
      const m = parsed.data;
      const id = newMerchantId();
      const alias = newAlias();
      const smtpUser = `${alias}@${deps.mailDomain}`;
      const smtpPassword = newSecret(24);
      const adminPassword = newSecret(16);
      const webhookSecret = `whsec_${newSecret(32)}`;
      const sealKey = newSealKey();
      if (await users.emailTaken(m.email)) throw emailTaken(m.email);
      await merchants.insert({
        _id: id,
        name: m.name,
        email: m.email,
        alias,
        senderDomains: m.senderDomains,
        currency: m.currency,
        locale: m.locale,
        timezone: m.timezone,
        delivery: m.delivery,
        linkLifetimeDays: m.linkLifetimeDays,
        ...(m.webhookUrl ? { webhookUrl: m.webhookUrl } : {}),
        webhookSecret,
        sealKey,
        smtpUser,
        smtpPasswordHash: await hashPassword(smtpPassword),
      });
      let adminId: string | null;
      try {
        adminId = await users.insert({ merchantId: id, email: m.email, passwordHash: await hashPassword(adminPassword), role: 'admin' });
      } catch (e) {
        await merchants.remove(id);
        throw e;
      }
      if (!adminId) {
        await merchants.remove(id);
        throw emailTaken(m.email);
      }
      return {
        id,
        name: m.name,
        email: m.email,
        alias,
        inboundAddress: inboundAddress(alias, deps.mailDomain),
        smtpUser,
        smtpPassword,
        adminEmail: m.email,
        adminPassword,
        webhookSecret,
        sealKey,
        currency: m.currency,
        locale: m.locale,
        timezone: m.timezone,
        delivery: m.delivery,
        senderDomains: m.senderDomains,
        ...(m.webhookUrl ? { webhookUrl: m.webhookUrl } : {}),
      };
    },

    async list() {
      const all = await merchants.listAll();
      return all.map((m) => ({
        id: m._id,
        name: m.name,
        email: m.email,
        alias: m.alias,
        inboundAddress: inboundAddress(m.alias, deps.mailDomain),
        smtpUser: m.smtpUser,
        currency: m.currency,
        locale: m.locale,
        timezone: m.timezone,
        delivery: m.delivery,
        senderDomains: m.senderDomains,
        webhookUrl: m.webhookUrl ?? null,
        status: m.status,
        createdAt: m.createdAt?.toISOString(),
      }));
    },

    /**
     * A new seal key, returned once. The current one becomes the previous key and still verifies
     * sealed requests for SEAL_KEY_GRACE_MS, so the merchant's site can switch without refusals
     * (as the webhook secret's rotation). Returns are sealed with the new key at once.
     */
    async rotateSealKey(id: string): Promise<{ id: string; sealKey: string; previousValidUntil: Date }> {
      const sealKey = newSealKey();
      const previousValidUntil = new Date(now().getTime() + SEAL_KEY_GRACE_MS);
      if (!(await merchants.rotateSealKey(id, sealKey, previousValidUntil))) {
        throw new AppError('MERCHANT_NOT_FOUND', `no such merchant: ${id}`, { httpStatus: 404 });
      }
      return { id, sealKey, previousValidUntil };
    },

    /**
     * SMTP AUTH: the merchant whose credentials these are, or undefined. Constant work either way.
     * A suspended merchant still logs in: the door refuses its mail with a reply that says why.
     */
    async authenticateSmtp(user: string, password: string): Promise<MerchantDoc | undefined> {
      const m = await merchants.findBySmtpUser(user);
      const ok = await verifyPassword(password, m?.smtpPasswordHash ?? DUMMY_HASH);
      return m && ok ? m : undefined;
    },
  };
}
export type MerchantService = ReturnType<typeof createMerchantService>;

// Verified against when the user is unknown, so timing does not reveal which users exist.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
