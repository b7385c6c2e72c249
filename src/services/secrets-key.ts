// The key of acquirer secrets at rest (src/domain/secret-box.ts): SECRETS_KEY in production; in
// development one is generated once into DATA_DIR/keys, like the pay-link keys (link-keys.ts), so
// the secrets stored in the development database keep decrypting across restarts.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config } from '../config.ts';
import { parseSecretsKey } from '../domain/secret-box.ts';

export async function loadSecretsKey(config: Pick<Config, 'secretsKey' | 'dataDir' | 'production'>): Promise<Buffer> {
  if (config.secretsKey) {
    const key = parseSecretsKey(config.secretsKey);
    if (!key) throw new Error('SECRETS_KEY: expected 32 bytes as 64 hex digits or base64');
    return key;
  }
  if (config.production) throw new Error('SECRETS_KEY is required in production');
  const dir = path.join(config.dataDir, 'keys');
  const file = path.join(dir, 'secrets-key');
  if (existsSync(file)) {
    const key = parseSecretsKey(await readFile(file, 'utf8'));
    if (!key) throw new Error(`${file} does not hold a 32-byte key; delete it only if no secret was stored with it`);
    return key;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // wx: two processes starting at once (the CLI and the server) must not each write their own key.
  await writeFile(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return parseSecretsKey(await readFile(file, 'utf8'))!;
}
