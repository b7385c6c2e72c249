// `paymail merchant set-acquirer ID sandbox|stripe [--secret-key sk_…] [--webhook-secret whsec_…]
// [--api-base URL] [--json]`: the merchant's acquirer for new payments. Stripe's secrets are
// encrypted under SECRETS_KEY before they are stored (generated into DATA_DIR in development) and
// never printed again: the answer shows `sk_test_…last4`. Exit 0, 1 on an error (unknown merchant,
// bad key), 2 on a usage error.
import { parseArgs } from 'node:util';
import { type Config } from '../config.ts';
import { createRepositories } from '../db/repositories.ts';
import { isAppError } from '../domain/errors.ts';
import { createAcquirerSettings } from '../services/acquirer/acquirer-settings.ts';
import { loadSecretsKey } from '../services/secrets-key.ts';

export const SET_ACQUIRER_USAGE = `  paymail merchant set-acquirer ID stripe --secret-key sk_… [--webhook-secret whsec_…] [--api-base URL] [--json]
  paymail merchant set-acquirer ID sandbox [--json]`;

export interface AcquirerCliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface AcquirerCliDeps {
  config: Pick<Config, 'secretsKey' | 'dataDir' | 'production'>;
  /** Opens the database; returns its closer. */
  connect: () => Promise<{ close: () => Promise<void> }>;
}

export async function runSetAcquirerCli(args: string[], io: AcquirerCliIo, deps: AcquirerCliDeps): Promise<number> {
  let values: { 'secret-key'?: string; 'webhook-secret'?: string; 'api-base'?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { 'secret-key': { type: 'string' }, 'webhook-secret': { type: 'string' }, 'api-base': { type: 'string' }, json: { type: 'boolean' } },
    }));
    if (positionals.length !== 2) throw new Error('give a merchant id and an acquirer: paymail merchant set-acquirer ID sandbox|stripe');
    if (positionals[1] === 'sandbox' && (values['secret-key'] || values['webhook-secret'] || values['api-base'])) {
      throw new Error('the sandbox takes no --secret-key, --webhook-secret or --api-base');
    }
  } catch (e) {
    io.err(`paymail: ${(e as Error).message.split('\n')[0]}\n${SET_ACQUIRER_USAGE}\n`);
    return 2;
  }
  const [merchantId, acquirer] = positionals as [string, string];
  const secretsKey = await loadSecretsKey(deps.config);
  const db = await deps.connect();
  try {
    const settings = createAcquirerSettings({ repos: createRepositories(), secretsKey });
    const view = await settings.set(merchantId, {
      acquirer,
      ...(values['secret-key'] !== undefined ? { secretKey: values['secret-key'] } : {}),
      ...(values['webhook-secret'] !== undefined ? { webhookSecret: values['webhook-secret'] } : {}),
      ...(values['api-base'] !== undefined ? { apiBase: values['api-base'] } : {}),
    });
    if (values.json) io.out(`${JSON.stringify({ id: merchantId, ...view }, null, 2)}\n`);
    else {
      const s = view.stripe;
      const details = view.acquirer === 'stripe' && s ? ` (key ${s.secretKeyHint}${s.webhookSecretHint ? `, webhook secret ${s.webhookSecretHint}` : ', no webhook secret'}${s.apiBase ? `, API ${s.apiBase}` : ''})` : '';
      io.out(`Merchant ${merchantId} now takes payments with ${view.acquirer}${details}.\n`);
    }
    return 0;
  } catch (e) {
    if (!isAppError(e)) throw e;
    io.err(`paymail: ${e.code}: ${e.message}\n`);
    return 1;
  } finally {
    await db.close();
  }
}
