// A merchant's logo, one document per merchant (its _id), apart from the merchant document so that
// the bytes are read only when the logo itself is asked for. The merchant's `branding.logo` names
// the current one by its SHA-256, which is also in its URL (so caches can keep it for ever).
import mongoose, { Schema, type InferSchemaType } from 'mongoose';

const MerchantLogoSchema = new Schema(
  {
    /** The merchant's id. */
    _id: { type: String, required: true },
    sha256: { type: String, required: true },
    type: { type: String, required: true },
    width: { type: Number, required: true },
    height: { type: Number, required: true },
    bytes: { type: Buffer, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false },
);

export type MerchantLogoDoc = InferSchemaType<typeof MerchantLogoSchema> & { _id: string };
export const MerchantLogo = mongoose.model('MerchantLogo', MerchantLogoSchema, 'merchant_logos');
