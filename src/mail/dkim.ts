// DKIM signing material for outgoing mail (RFC 6376): the selector and private key from the
// configuration, checked once at start so a bad key stops start-up instead of every send.
// nodemailer signs with rsa-sha256 only, so the key must be RSA (RFC 8301: at least 1024 bits;
// 2048 is what receivers expect today).
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Config } from '../config.ts';
import { AppError } from '../domain/errors.ts';

/** nodemailer's transport-level `dkim` option. */
export interface DkimSigning {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

const MIN_RSA_BITS = 1024;

function parseKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new AppError('DKIM_KEY_INVALID', `${source} is not a PEM private key`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new AppError('DKIM_KEY_INVALID', `${source} must be an RSA key (nodemailer signs rsa-sha256), not ${key.asymmetricKeyType}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw new AppError('DKIM_KEY_INVALID', `${source} has ${bits} bits; DKIM needs at least ${MIN_RSA_BITS} (2048 recommended)`);
  return key;
}

/** The signing options for MAIL_DOMAIN, or undefined when DKIM is not configured (the relay may sign). */
export async function loadDkimSigning(config: Pick<Config, 'dkim' | 'mailDomain'>): Promise<DkimSigning | undefined> {
  if (!config.dkim) return undefined;
  const { selector, privateKey, privateKeyFile } = config.dkim;
  const pem = privateKey ?? (privateKeyFile ? await readFile(privateKeyFile, 'utf8') : undefined);
  if (!pem) return undefined;
  const key = parseKey(pem.replace(/\\n/g, '\n'), privateKey ? 'DKIM_PRIVATE_KEY' : `DKIM_PRIVATE_KEY_FILE (${privateKeyFile})`);
  return { domainName: config.mailDomain, keySelector: selector, privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The TXT record to publish at `<selector>._domainkey.<MAIL_DOMAIN>` for this key. */
export function dkimTxtRecord(privateKeyPem: string): string {
  const spki = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return `v=DKIM1; k=rsa; p=${spki.toString('base64')}`;
}
