// The per-mail return path (VERP): every outbox mail leaves with the SMTP envelope sender
// `bounce+<outbox id>-<tag>@MAIL_DOMAIN`, so a bounce names the mail it is about whatever the
// remote MTA wrote in its report. The tag is a truncated HMAC of the outbox id under a key derived
// from the link-signing keys (like the CSRF key): a stranger cannot make up a valid address for a
// mail, so forged bounces are refused at RCPT. Every link key verifies, so a key rotation keeps
// the return paths of mails already sent working. Lower-case hex only: some MTAs fold the case
// of local parts.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The local part's prefix: `bounce+…@MAIL_DOMAIN`. */
export const VERP_PREFIX = 'bounce+';

/** Hex characters of the tag (48 bits: guessing one takes ~10^14 tries, each a 550 at RCPT). */
const TAG_CHARS = 12;

/** Outbox ids are MongoDB ObjectIds: 24 hex characters. */
const ADDRESS = /^bounce\+([0-9a-f]{24})-([0-9a-f]{12})$/;

export function deriveVerpKey(linkSecret: string): Buffer {
  return createHmac('sha256', linkSecret).update('paymail-verp-key-v1').digest();
}

export interface Verp {
  /** The return path of outbox mail `mailId`. */
  returnPath(mailId: string): string;
  /**
   * The outbox id a return path names, when its tag verifies (constant-time) and its domain is
   * MAIL_DOMAIN; undefined for anything else (another address, a forged or mistyped tag).
   */
  mailIdOf(address: string): string | undefined;
  /** True for any `bounce+…@MAIL_DOMAIN` address, valid or not (the MX door refuses the invalid ones). */
  isBounceAddress(address: string): boolean;
}

/** `keys`: one derived key per link-signing key; the first one signs. */
export function createVerp(keys: readonly Buffer[], mailDomain: string): Verp {
  if (keys.length === 0) throw new Error('VERP needs at least one key');
  const domain = mailDomain.toLowerCase();
  const tag = (key: Buffer, id: string) => createHmac('sha256', key).update(`verp:${id}`).digest('hex').slice(0, TAG_CHARS);

  function split(address: string): { local: string; domain: string } | undefined {
    const at = address.lastIndexOf('@');
    if (at <= 0) return undefined;
    return { local: address.slice(0, at).toLowerCase(), domain: address.slice(at + 1).toLowerCase() };
  }

  return {
    returnPath(mailId) {
      const id = mailId.toLowerCase();
      if (!/^[0-9a-f]{24}$/.test(id)) throw new Error(`not an outbox id: ${mailId}`);
      return `${VERP_PREFIX}${id}-${tag(keys[0]!, id)}@${domain}`;
    },
    mailIdOf(address) {
      const parts = split(address);
      if (!parts || parts.domain !== domain) return undefined;
      const m = ADDRESS.exec(parts.local);
      if (!m) return undefined;
      const given = Buffer.from(m[2]!);
      const ok = keys.some((k) => timingSafeEqual(Buffer.from(tag(k, m[1]!)), given));
      return ok ? m[1] : undefined;
    },
    isBounceAddress(address) {
      const parts = split(address);
      return !!parts && parts.domain === domain && parts.local.startsWith(VERP_PREFIX);
    },
  };
}
