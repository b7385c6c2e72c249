// Pay-link signing keys: LINK_SIGNING_KEYS in production; in development a key is generated once
// into DATA_DIR/keys so links survive restarts.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config } from '../config.ts';
import { type LinkKey } from '../domain/pay-link.ts';

export async function loadLinkKeys(config: Pick<Config, 'linkSigningKeys' | 'dataDir' | 'production'>): Promise<LinkKey[]> {
  if (config.linkSigningKeys) return config.linkSigningKeys.map((k) => ({ ...k }));
  if (config.production) throw new Error('LINK_SIGNING_KEYS is required in production');
  const dir = path.join(config.dataDir, 'keys');
  const file = path.join(dir, 'link-keys.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as LinkKey[];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys: LinkKey[] = [{ kid: `dev${Date.now().toString(36)}`, secret: randomBytes(32).toString('base64url') }];
  await writeFile(file, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}
