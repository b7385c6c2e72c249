import mongoose, { Schema, type InferSchemaType } from 'mongoose';
import { ROLES } from '../../domain/merchant.ts';

export { ROLES, type Role } from '../../domain/merchant.ts';

const MerchantUserSchema = new Schema(
  {
    merchantId: { type: String, required: true, index: true },
    email: { type: String, required: true, lowercase: true, trim: true, unique: true },
    passwordHash: { type: String, required: true },
    role: { type: String, enum: ROLES, required: true },
    /** The back office's language for this user; absent: the merchant's locale. */
    locale: { type: String },
  },
  { timestamps: true, versionKey: false },
);

export type MerchantUserDoc = InferSchemaType<typeof MerchantUserSchema>;
export const MerchantUser = mongoose.model('MerchantUser', MerchantUserSchema, 'merchant_users');
