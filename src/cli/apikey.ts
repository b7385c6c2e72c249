// `paymail apikey create --merchant ID [--read-only] [--label TEXT] [--json]`, `paymail apikey list
// --merchant ID [--json]` and `paymail apikey revoke KEYID [--json]`: the server API's keys
// (src/services/api-key.service.ts). The key is printed once by create; paymail keeps its hash.
// Exit 0 when done, 1 on an error (unknown merchant or key), 2 on a usage error.
import { parseArgs } from 'node:util';
import { createRepositories } from '../db/repositories.ts';
import { isAppError } from '../domain/errors.ts';
import { createApiKeyService, type ApiKeyRow } from '../services/api-key.service.ts';

export const APIKEY_USAGE = `  paymail apikey create --merchant ID [--read-only] [--label TEXT] [--json]
  paymail apikey list --merchant ID [--json]
  paymail apikey revoke KEYID [--json]`;

export interface ApikeyCliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface ApikeyCliDeps {
  /** Opens the database; returns its closer. */
  connect: () => Promise<{ close: () => Promise<void> }>;
}

const rowJson = (k: ApiKeyRow) => ({
  id: k.id,
  merchantId: k.merchantId,
  hint: k.hint,
  ...(k.label ? { label: k.label } : {}),
  readOnly: k.readOnly,
  revoked: k.revoked,
  createdAt: k.createdAt.toISOString(),
  ...(k.revokedAt ? { revokedAt: k.revokedAt.toISOString() } : {}),
});

export async function runApikeyCli(args: string[], io: ApikeyCliIo, deps: ApikeyCliDeps): Promise<number> {
  const [command, ...rest] = args;
  let values: { merchant?: string; 'read-only'?: boolean; label?: string; json?: boolean };
  let positionals: string[];
  try {
    if (command !== 'create' && command !== 'list' && command !== 'revoke') throw new Error(`unknown command "apikey ${command ?? ''}" (try: paymail help)`);
    ({ values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: command === 'revoke',
      options:
        command === 'create'
          ? { merchant: { type: 'string' }, 'read-only': { type: 'boolean' }, label: { type: 'string' }, json: { type: 'boolean' } }
          : command === 'list'
            ? { merchant: { type: 'string' }, json: { type: 'boolean' } }
            : { json: { type: 'boolean' } },
    }));
    if (command !== 'revoke' && !values.merchant) throw new Error('--merchant ID is required');
    if (command === 'revoke' && positionals.length !== 1) throw new Error('give one key id: paymail apikey revoke KEYID');
  } catch (e) {
    io.err(`paymail: ${(e as Error).message.split('\n')[0]}\n${APIKEY_USAGE}\n`);
    return 2;
  }
  const db = await deps.connect();
  try {
    const keys = createApiKeyService({ repos: createRepositories() });
    if (command === 'create') {
      const made = await keys.create(values.merchant!, { readOnly: values['read-only'] === true, label: values.label, createdBy: 'cli' });
      if (values.json) io.out(`${JSON.stringify({ id: made.id, key: made.key, merchantId: made.row.merchantId, readOnly: made.row.readOnly }, null, 2)}\n`);
      else {
        io.out(`${made.key}\n`);
        io.err(`API key ${made.id}${made.row.readOnly ? ' (read-only)' : ''} for merchant ${made.row.merchantId}: shown only now; paymail keeps only its hash.\n`);
      }
    } else if (command === 'list') {
      const list = await keys.list(values.merchant!);
      if (values.json) io.out(`${JSON.stringify(list.map(rowJson), null, 2)}\n`);
      else if (list.length === 0) io.out(`No API keys for ${values.merchant}: paymail apikey create --merchant ${values.merchant}\n`);
      else {
        for (const k of list) {
          io.out(`${k.id}  ${k.hint}  ${k.readOnly ? 'read-only' : 'read-write'}  ${k.revoked ? 'revoked' : 'active'}  ${k.createdAt.toISOString()}${k.label ? `  ${k.label}` : ''}\n`);
        }
      }
    } else {
      const revoked = await keys.revoke(null, positionals[0]!);
      if (values.json) io.out(`${JSON.stringify(rowJson(revoked), null, 2)}\n`);
      else io.out(`API key ${revoked.id} revoked.\n`);
    }
    return 0;
  } catch (e) {
    if (!isAppError(e) || e.httpStatus >= 500) throw e;
    io.err(`paymail: ${e.message}\n`);
    return 1;
  } finally {
    await db.close();
  }
}
