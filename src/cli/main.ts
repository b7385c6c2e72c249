// The `paymail` command for the service operator: merchant create / list / suspend / resume / rotate-seal-key, apikey create / list / revoke.
// Exit code 0 on success; otherwise non-zero with a one-line reason on stderr.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { connectDatabase } from '../db/connection.ts';
import { createRepositories } from '../db/repositories.ts';
import { isAppError } from '../domain/errors.ts';
import { checkWebhookTarget } from '../services/webhook-target.ts';
import { createMerchantService } from '../services/merchant.service.ts';
import { createMerchantSuspensionService } from '../services/merchant-suspension.service.ts';
import { APIKEY_USAGE, runApikeyCli } from './apikey.ts';
import { RECEIPT_USAGE, runReceiptCli } from './receipt.ts';
import { RECAP_USAGE, runRecapCli } from './recap.ts';
import { runSetAcquirerCli, SET_ACQUIRER_USAGE } from './acquirer.ts';

const USAGE = `usage:
  paymail merchant create --name NAME --email ADDRESS [--sender-domain D]... [--currency EUR]
                          [--locale en] [--timezone Europe/Rome] [--delivery merchant|customer]
                          [--webhook-url URL] [--json]
  paymail merchant list [--json]
  paymail merchant suspend ID [--reason TEXT] [--json]
  paymail merchant resume ID [--json]
  paymail merchant rotate-seal-key ID [--json]
${SET_ACQUIRER_USAGE}
${APIKEY_USAGE}
${RECEIPT_USAGE}
${RECAP_USAGE}`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (!group || group === '--help' || group === 'help' || group === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return group ? 0 : 2;
  }
  if (group === 'recap') {
    const config = loadConfig();
    return runRecapCli(
      [command ?? '', ...rest],
      { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), progress: process.stderr.isTTY === true },
      {
        mailDomain: config.mailDomain,
        connect: () => connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true }),
      },
    );
  }
  if (group === 'apikey') {
    const config = loadConfig();
    return runApikeyCli([command ?? '', ...rest], { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }, {
      connect: () => connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true }),
    });
  }
  if (group === 'receipt') {
    return runReceiptCli([command ?? '', ...rest], {
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
    });
  }
  if (group === 'merchant' && (command === 'suspend' || command === 'resume')) return runSuspension(command, rest);
  if (group === 'merchant' && command === 'rotate-seal-key') return runRotateSealKey(rest);
  if (group === 'merchant' && command === 'set-acquirer') {
    const config = loadConfig();
    return runSetAcquirerCli(rest, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }, {
      config,
      connect: () => connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true }),
    });
  }
  if (group !== 'merchant' || (command !== 'create' && command !== 'list')) {
    throw new UsageError(`unknown command "${[group, command].filter(Boolean).join(' ')}" (try: paymail help)`);
  }
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options:
        command === 'create'
          ? {
              name: { type: 'string' },
              email: { type: 'string' },
              'sender-domain': { type: 'string', multiple: true },
              currency: { type: 'string' },
              locale: { type: 'string' },
              timezone: { type: 'string' },
              delivery: { type: 'string' },
              'webhook-url': { type: 'string' },
              json: { type: 'boolean' },
            }
          : { json: { type: 'boolean' } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  if (command === 'create') {
    if (typeof values.name !== 'string') throw new UsageError('--name is required');
    if (typeof values.email !== 'string') throw new UsageError('--email is required');
  }

  const config = loadConfig();
  // Progress (e.g. the one-time database build) goes to stderr so stdout stays pure JSON.
  const db = await connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true });
  try {
    const merchants = createMerchantService({ repos: createRepositories(), mailDomain: config.mailDomain });
    if (command === 'create') {
      const opt = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
      // Refused like in the back office (server-side request forgery); an unresolvable name is
      // accepted there too, as delivery checks every address again.
      const webhookUrl = opt('webhook-url');
      if (webhookUrl) {
        await checkWebhookTarget(webhookUrl, { allowPrivate: config.webhookAllowPrivate }).catch((e: unknown) => {
          if (!isAppError(e, 'WEBHOOK_HOST_UNRESOLVED') && !isAppError(e, 'WEBHOOK_URL_INVALID')) throw e;
        });
      }
      const created = await merchants.create({
        name: opt('name')!,
        email: opt('email')!,
        senderDomains: (values['sender-domain'] as string[] | undefined) ?? [],
        ...(opt('currency') ? { currency: opt('currency') } : {}),
        ...(opt('locale') ? { locale: opt('locale') as 'en' } : {}),
        ...(opt('timezone') ? { timezone: opt('timezone') } : {}),
        ...(opt('delivery') ? { delivery: opt('delivery') as 'merchant' } : {}),
        ...(opt('webhook-url') ? { webhookUrl: opt('webhook-url') } : {}),
      });
      if (values.json) {
        process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      } else {
        process.stdout.write(
          [
            `Merchant ${created.name} created (${created.id}).`,
            `  Send orders to:     ${created.inboundAddress}`,
            `  SMTP user:          ${created.smtpUser}`,
            `  SMTP password:      ${created.smtpPassword}`,
            `  Back-office log-in: ${created.adminEmail} / ${created.adminPassword}`,
            `  Webhook secret:     ${created.webhookSecret}`,
            `  Seal key:           ${created.sealKey}`,
            'The passwords are shown only now; paymail keeps only their hashes.',
            '',
          ].join('\n'),
        );
      }
    } else {
      const list = await merchants.list();
      if (values.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) process.stdout.write('No merchants yet: paymail merchant create --name … --email …\n');
      else for (const m of list) process.stdout.write(`${m.id}  ${m.name}  <${m.email}>  ${m.inboundAddress}\n`);
    }
    return 0;
  } finally {
    await db.close();
  }
}

/** `merchant suspend ID [--reason TEXT]` and `merchant resume ID`: one result line (or JSON) on stdout. */
async function runSuspension(command: 'suspend' | 'resume', args: string[]): Promise<number> {
  let values: { reason?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: command === 'suspend' ? { reason: { type: 'string' }, json: { type: 'boolean' } } : { json: { type: 'boolean' } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  if (positionals.length !== 1) throw new UsageError(`give one merchant id: paymail merchant ${command} ID`);
  const config = loadConfig();
  const db = await connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true });
  try {
    const service = createMerchantSuspensionService({ repos: createRepositories() });
    const id = positionals[0]!;
    const state = command === 'suspend' ? await service.suspend(id, values.reason) : await service.resume(id);
    if (values.json) process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
    else if (state.released) {
      process.stdout.write(`Merchant ${state.name} (${state.id}) resumed; ${state.released.mails} held mail(s) and ${state.released.webhooks} held webhook event(s) released.\n`);
    } else if (!state.changed) {
      process.stdout.write(`Merchant ${state.name} (${state.id}) was already suspended${state.suspendedAt ? ` since ${state.suspendedAt}` : ''}${state.reason ? `: ${state.reason}` : ''}; nothing changed.\n`);
    } else process.stdout.write(`Merchant ${state.name} (${state.id}) suspended${state.reason ? `: ${state.reason}` : ''}.\n`);
    return 0;
  } finally {
    await db.close();
  }
}

/** `merchant rotate-seal-key ID`: the new key alone on stdout (or JSON); the old key verifies for 24 hours more. */
async function runRotateSealKey(args: string[]): Promise<number> {
  let values: { json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { json: { type: 'boolean' } } }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  if (positionals.length !== 1) throw new UsageError('give one merchant id: paymail merchant rotate-seal-key ID');
  const config = loadConfig();
  const db = await connectDatabase(config, { log: (l) => process.stderr.write(`${l}\n`), reuseRunning: true });
  try {
    const rotated = await createMerchantService({ repos: createRepositories(), mailDomain: config.mailDomain }).rotateSealKey(positionals[0]!);
    if (values.json) process.stdout.write(`${JSON.stringify(rotated, null, 2)}\n`);
    else {
      process.stdout.write(`${rotated.sealKey}\n`);
      process.stderr.write(`The previous seal key is accepted until ${rotated.previousValidUntil.toISOString()}.\n`);
    }
    return 0;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const msg =
      e instanceof UsageError || e instanceof ConfigError || isAppError(e)
        ? (e as Error).message
        : `${(e as Error).message ?? String(e)}`.split('\n')[0];
    process.stderr.write(`paymail: ${msg}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
