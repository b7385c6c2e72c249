// P4: checkout GET p99 while the SMTP submission door ingests big mails (a 2 MB text mail and a
// 20 MB attachment, sent again and again for the whole measurement) ÷ the idle p99, same process,
// same pay-link. MAX_MESSAGE_BYTES (default 10 MiB, at most 50 MiB) is set to 32 MiB for the
// bench: a 20 MB attachment is 27.4 MiB of MIME (base64), stored as 4 MiB raw chunks
// (src/db/models/inbound-message.model.ts). The mails are built once before the measurement, so
// the load generator's own event loop is not busy composing MIME while it times requests; each
// send gets its own Message-ID (digits patched in place), so every mail is a new message that is
// stored AND processed (parsed, order created), not a duplicate answered from the first one.
//   npx tsx bench/p4-checkout-under-ingest.ts     BENCH_HTTP_SECONDS (10), BENCH_HTTP_CONNECTIONS (10)
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { createMerchantService } from '../src/services/merchant.service.ts';
import { HTTP_SECONDS, createPayLink, load } from './p2-checkout-get.ts';
import { type BenchResult, MAIL_DOMAIN, fmt, openDb, printResult, startServer } from './lib.ts';
import { createRepositories } from '../src/db/repositories.ts';

const repos = createRepositories();

const MB = 1024 * 1024;

function build(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new MailComposer(mail).compile().build();
}

export async function runP4(): Promise<BenchResult> {
  const db = await openDb('p4');
  try {
    const app = await startServer('paymail', { MONGODB_URI: db.uri, MAX_MESSAGE_BYTES: String(32 * MB), });
    try {
      const link = await createPayLink(app, 4);
      const url = `http://127.0.0.1:${app.ports.http}${link.path}`;
      const m = await createMerchantService({ repos, mailDomain: MAIL_DOMAIN }).create({ name: 'Bench P4 ingest', email: 'desk@p4.example' });
      const env = { from: m.email, to: m.inboundAddress };
      const line = 'Amount: 10.00 EUR lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n';
      const messageId = (k: string) => `<p4-${k}-000000000@p4.example>`;
      const kinds = [
        { name: '2 MB text', id: messageId('text'), raw: await build({ ...env, messageId: messageId('text'), subject: 'big text', text: line.repeat(Math.ceil((2 * MB) / line.length)) }) },
        { name: '20 MB attachment', id: messageId('attachment'), raw: await build({ ...env, messageId: messageId('attachment'), subject: 'big attachment', text: 'Amount: 10.00 EUR\n', attachments: [{ filename: 'scan.bin', content: randomBytes(20 * MB) }] }) },
      ];
      const digitsAt = kinds.map((k) => {
        const at = k.raw.indexOf(k.id);
        if (at < 0) throw new Error(`no Message-ID ${k.id} in the ${k.name} mail`);
        return at + k.id.indexOf('000000000');
      });
      /** Writes `n` over the digits of kind `i`'s Message-ID, in place (same length). */
      const numbered = (i: number, n: number) => {
        const k = kinds[i]!;
        k.raw.write(String(n).padStart(9, '0'), digitsAt[i]!, 'latin1');
        return k.raw;
      };
      const answers = new Map<string, Map<string, number>>(kinds.map((k) => [k.name, new Map()]));

      const idle = await load(url);
      let stop = false;
      const smtp = nodemailer.createTransport({
        host: '127.0.0.1',
        port: app.ports.submission!,
        secure: false,
        auth: { user: m.smtpUser, pass: m.smtpPassword },
        tls: { rejectUnauthorized: false },
      });
      // One sender per kind, each sending its mail again as soon as it is answered.
      let sent = 0;
      const senders = kinds.map(async (k, i) => {
        while (!stop) {
          let code = '250';
          try {
            await smtp.sendMail({ envelope: env, raw: numbered(i, ++sent) });
          } catch (err) {
            code = String((err as { responseCode?: number }).responseCode ?? (err as Error).message);
          }
          const a = answers.get(k.name)!;
          a.set(code, (a.get(code) ?? 0) + 1);
        }
      });
      await new Promise((r) => setTimeout(r, 1_000));
      const busy = await load(url);
      stop = true;
      await Promise.all(senders);
      smtp.close();

      const ratio = busy.p99 / Math.max(idle.p99, 1);
      const d = db.description;
      return {
        id: 'P4',
        title: 'checkout p99 while the SMTP door ingests big mails ÷ idle p99',
        database: d,
        lines: [
          `autocannon as in P2 (${HTTP_SECONDS} s), message size limit raised to 32 MiB for the bench; each send a new Message-ID (stored and processed); mails: ${kinds.map((k) => `${k.name} = ${fmt(k.raw.length / MB, 1)} MiB of MIME`).join(', ')}`,
          `| | req/s | p50 | p99 | non-2xx | database |`,
          `|---|---|---|---|---|---|`,
          `| idle (baseline) | ${fmt(idle.rps, 0)} | ${idle.p50} ms | ${idle.p99} ms | ${idle.non2xx} | ${d} |`,
          `| while ingesting | ${fmt(busy.rps, 0)} | ${busy.p50} ms | ${busy.p99} ms | ${busy.non2xx} | ${d} |`,
          `SMTP answers during the run: ${[...answers].map(([k, a]) => `${k}: ${[...a].map(([c, n]) => `${n}× ${c}`).join(', ') || 'none finished'}`).join('; ')}`,
          `ratio p99 ${fmt(ratio)} [${d}]`,
        ],
        checks: [{ name: 'P4 p99 ratio', value: ratio, target: '≤ 1.5', ok: ratio <= 1.5 }],
      };
    } finally {
      await app.stop();
    }
  } finally {
    await db.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printResult(await runP4());
