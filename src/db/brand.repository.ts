// The merchant's look: its accent colour (on the merchant document, read with it for every page
// and mail) and its logo (bytes in merchant_logos, facts on the merchant document).
// All database access for branding; callers get it injected (src/db/repositories.ts).
import { createHash } from 'node:crypto';
import { Merchant } from './models/merchant.model.ts';
import { MerchantLogo, type MerchantLogoDoc } from './models/merchant-logo.model.ts';

export type { MerchantLogoDoc } from './models/merchant-logo.model.ts';

export interface NewLogo {
  type: string;
  width: number;
  height: number;
  bytes: Buffer;
}

export function createBrandRepository() {
  return {
    /** Sets the accent (#rrggbb) or, with null, goes back to paymail's default. */
    async setAccent(merchantId: string, accent: string | null): Promise<void> {
      await Merchant.updateOne({ _id: merchantId }, accent ? { $set: { 'branding.accent': accent } } : { $unset: { 'branding.accent': 1 } });
    },

    /**
     * Stores the logo, then points the merchant at it. A crash in between leaves the previous
     * logo's facts on the merchant and a newer logo's bytes: its URL (by SHA-256) then answers 404
     * and the pages show no logo until the merchant uploads again — never the wrong picture.
     */
    async putLogo(merchantId: string, logo: NewLogo): Promise<string> {
      const sha256 = createHash('sha256').update(logo.bytes).digest('hex');
      await MerchantLogo.replaceOne({ _id: merchantId }, { _id: merchantId, sha256, ...logo, at: new Date() }, { upsert: true });
      await Merchant.updateOne({ _id: merchantId }, { $set: { 'branding.logo': { sha256, type: logo.type, width: logo.width, height: logo.height } } });
      return sha256;
    },

    async removeLogo(merchantId: string): Promise<void> {
      await Merchant.updateOne({ _id: merchantId }, { $unset: { 'branding.logo': 1 } });
      await MerchantLogo.deleteOne({ _id: merchantId });
    },

    /** The merchant's logo if it is the one `sha256` names (an older URL finds nothing). */
    async logo(merchantId: string, sha256: string): Promise<MerchantLogoDoc | null> {
      const doc = await MerchantLogo.findOne({ _id: merchantId }).lean<MerchantLogoDoc>();
      if (!doc || doc.sha256 !== sha256) return null;
      // A lean read gives the driver's Binary, not a Buffer.
      const raw = doc.bytes as unknown;
      return { ...doc, bytes: Buffer.isBuffer(raw) ? raw : Buffer.from((raw as { buffer: Uint8Array }).buffer) };
    },
  };
}
export type BrandRepository = ReturnType<typeof createBrandRepository>;
