// Identifiers: unguessable public ids for pay-links, short readable ones for people.
import { customAlphabet, nanoid } from 'nanoid';

const READABLE = customAlphabet('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 10);
const ALIAS = customAlphabet('abcdefghijkmnpqrstuvwxyz23456789', 10);

/** 21 characters of nanoid: ~126 bits, the capability in a pay-link. */
export const newPublicId = (): string => nanoid();
export const newMerchantId = (): string => `mer_${READABLE()}`;
export const newOrderReference = (): string => `PM-${READABLE()}`;
export const newReceiptNumber = (): string => `RCPT-${READABLE()}`;
export const newAlias = (): string => ALIAS();
export const newSecret = (size = 32): string => nanoid(size);
/** An order's _id: `ord_` + its public id, so the pay-link leads to the order by primary key. */
export const orderIdFor = (publicId: string): string => `ord_${publicId}`;
