// Password and SMTP credential hashing with Node's scrypt (memory-hard; no native add-on needed).
// Format: scrypt$N$r$p$salt$hash (base64url), so parameters can be raised later.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { AppError } from './errors.ts';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/**
 * scrypt runs on libuv's thread pool (4 threads by default), which file-system calls, dns.lookup
 * and zlib share: an AUTH storm (up to 100 SMTP clients at once, each AUTH one scrypt) would
 * otherwise take every thread and stall them all. At most this many run at once, the rest queue.
 */
const MAX_CONCURRENT = 2;
/** Beyond this many waiting, a check is refused at once (busy) instead of queueing for seconds. */
const MAX_WAITING = 200;
let active = 0;
const waiting: Array<() => void> = [];

/** scrypt work in progress and queued (for tests and /metrics). */
export function passwordHashLoad(): { active: number; waiting: number } {
  return { active, waiting: waiting.length };
}

async function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  if (active >= MAX_CONCURRENT) {
    if (waiting.length >= MAX_WAITING) {
      throw new AppError('PASSWORD_CHECK_BUSY', 'too many password checks at once, try again later', { httpStatus: 503, smtpCode: 454 });
    }
    // Woken with the finishing caller's slot: `active` already counts this one.
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    active++;
  }
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } finally {
    const next = waiting.shift();
    if (next) next();
    else active--;
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEYLEN, { N, r: R, p: P, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, saltB64, keyB64] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(keyB64, 'base64url');
  const key = await scrypt(password, Buffer.from(saltB64, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 64 * 1024 * 1024,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}
