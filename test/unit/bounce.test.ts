// The bounce reader (src/domain/bounce.ts) over real-format samples in test/fixtures/bounces/:
// Postfix, Exim, Gmail (mailer-daemon@googlemail.com) and Outlook/Exchange Online DSNs, a Postfix
// delay warning, a qmail plain bounce and an out-of-office reply; and the VERP return path
// (src/domain/verp.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readBounce, verdictFor, cleanDiagnostic } from '../../src/domain/bounce.ts';
import { parseCommand } from '../../src/domain/commands.ts';
import { createVerp, deriveVerpKey } from '../../src/domain/verp.ts';
import { commandAddress } from '../../src/services/command-resend.ts';
import { parseInboundMail } from '../../src/mail/parse-worker.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/bounces/${name}`, import.meta.url));

async function read(name: string) {
  const raw = fixture(name);
  const mail = await parseInboundMail(raw);
  const xfr = mail.headers.get('x-failed-recipients');
  return readBounce({ raw, text: mail.text, subject: mail.subject, failedRecipients: typeof xfr === 'string' ? xfr : undefined });
}

describe('bounce reader', () => {
  const cases: Array<{ file: string; format: 'dsn' | 'plain'; outcome: string; recipient: string; status: string; reason: RegExp; sentTo: string[] }> = [
    {
      file: 'postfix-user-unknown.eml',
      format: 'dsn',
      outcome: 'failed',
      recipient: 'anna.rossi@example.org',
      status: '5.1.1',
      reason: /^550 5\.1\.1 <anna\.rossi@example\.org>: Recipient address rejected: User unknown in virtual mailbox table$/,
      sentTo: ['anna.rossi@example.org', 'desk@bellavista.example'],
    },
    {
      file: 'exim-mailbox-unavailable.eml',
      format: 'dsn',
      outcome: 'failed',
      recipient: 'k.meyer@example.net',
      status: '5.0.0',
      reason: /^550 5\.2\.1 Mailbox unavailable: this account has been disabled$/,
      sentTo: ['k.meyer@example.net'],
    },
    {
      file: 'gmail-no-such-user.eml',
      format: 'dsn',
      outcome: 'failed',
      recipient: 'luca.bianchi.1987@gmail.com',
      status: '5.1.1',
      // The four-line reply, its repeated 550-5.1.1 prefixes dropped.
      reason: /^550-5\.1\.1 The email account that you tried to reach does not exist\. Please try double-checking the recipient's email address for typos or unnecessary spaces\. For more information, go to https:\/\/support\.google\.com\/mail\/\?p=NoSuchUser .* - gsmtp$/,
      sentTo: ['luca.bianchi.1987@gmail.com'],
    },
    {
      file: 'outlook-ndr-recipient-not-found.eml',
      format: 'dsn',
      outcome: 'failed',
      recipient: 'm.dubois@contoso.example',
      status: '5.1.10',
      reason: /^550 5\.1\.10 RESOLVER\.ADR\.RecipientNotFound; Recipient m\.dubois@contoso\.example not found by SMTP address lookup$/,
      sentTo: ['m.dubois@contoso.example'],
    },
    {
      file: 'postfix-delayed.eml',
      format: 'dsn',
      outcome: 'delayed',
      recipient: 'anna.rossi@example.org',
      status: '4.4.1',
      reason: /^connect to mx1\.example\.org\[198\.51\.100\.7\]:25: Connection timed out$/,
      sentTo: ['anna.rossi@example.org'],
    },
    {
      file: 'qmail-plain-failure.eml',
      format: 'plain',
      outcome: 'failed',
      recipient: 's.garcia@example.es',
      status: '5.1.1',
      reason: /^550 5\.1\.1 <s\.garcia@example\.es>: Recipient address rejected: User unknown in local recipient table$/,
      sentTo: ['s.garcia@example.es'],
    },
  ];

  for (const c of cases) {
    it(`${c.file}: ${c.format}, ${c.outcome} for ${c.recipient} (${c.status})`, async () => {
      const report = await read(c.file);
      assert.equal(report.format, c.format);
      const v = verdictFor(report, c.sentTo);
      assert.equal(v.outcome, c.outcome);
      assert.equal(v.recipient, c.recipient);
      assert.equal(v.status, c.status);
      assert.match(v.reason, c.reason);
    });
  }

  it('an out-of-office reply to the return path is no bounce', async () => {
    const report = await read('vacation-autoreply.eml');
    assert.deepEqual(report.recipients, []);
    assert.equal(verdictFor(report, ['anna.rossi@example.org']).outcome, 'none');
  });

  it('with the merchant in copy, the verdict is about the address the DSN reports failed (the customer)', async () => {
    // The pay-link went to the customer with the merchant in copy; only the customer failed.
    const v = verdictFor(await read('postfix-user-unknown.eml'), ['desk@bellavista.example', 'anna.rossi@example.org']);
    assert.equal(v.recipient, 'anna.rossi@example.org');
  });

  it('a plain bounce naming no address falls back to the mail’s first recipient (the VERP id says which mail)', () => {
    const raw = Buffer.from('From: MAILER-DAEMON@mx.example\r\nSubject: Returned mail: see transcript for details\r\n\r\nThe message could not be delivered.\r\n550 5.1.2 Host unknown\r\n');
    const v = verdictFor(readBounce({ raw, text: 'The message could not be delivered.\n550 5.1.2 Host unknown\n', subject: 'Returned mail: see transcript for details' }), ['anna@example.org']);
    assert.deepEqual(v, { outcome: 'failed', recipient: 'anna@example.org', status: '5.1.2', reason: '550 5.1.2 Host unknown' });
  });

  it('a delivery-status without a Diagnostic-Code explains the status code', () => {
    const raw = Buffer.from(
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; <Full@Example.ORG>\r\nAction: failed\r\nStatus: 5.2.2 (mailbox full)\r\n\r\n--b--\r\n',
    );
    assert.deepEqual(verdictFor(readBounce({ raw }), ['full@example.org']), { outcome: 'failed', recipient: 'full@example.org', status: '5.2.2', reason: 'the mailbox is full (5.2.2)' });
  });

  it('a forward on the far side: the address we sent to is the Original-Recipient', () => {
    // Postfix's "(expanded from <…>)": the alias expanded to a local mailbox that does not exist.
    const raw = Buffer.from(
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n<r@mx.example.org> (expanded from <anna@example.org>): user unknown\r\n' +
        '--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; r@mx.example.org\r\nOriginal-Recipient: rfc822;anna@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n' +
        'Diagnostic-Code: x-unix; procmail: Couldn\'t create "/var/spool/mail/r"\r\n\r\n--b--\r\n',
    );
    const v = verdictFor(readBounce({ raw }), ['anna@example.org']);
    assert.equal(v.recipient, 'anna@example.org');
    assert.equal(v.outcome, 'failed');
    assert.match(v.reason, /^procmail: Couldn't create/);
  });

  it('a success notice (Action: delivered) is no failure', () => {
    const raw = Buffer.from('Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n--x--\r\n');
    assert.equal(verdictFor(readBounce({ raw }), ['a@b.example']).outcome, 'none');
  });

  it('cleanDiagnostic keeps one line and caps the length', () => {
    assert.equal(cleanDiagnostic('smtp; 550-5.1.1 first\n 550-5.1.1 second\n 550 5.1.1 third'), '550-5.1.1 first second third');
    assert.ok(cleanDiagnostic(`smtp; 550 ${'x'.repeat(1000)}`)!.length <= 300);
  });
});

describe('VERP return path', () => {
  const keyA = deriveVerpKey('a'.repeat(32));
  const keyB = deriveVerpKey('b'.repeat(32));
  const id = '65f0c0ffee0000000000abcd';

  it('names the mail, verifies its tag, and survives a key rotation and case folding', () => {
    const verp = createVerp([keyA], 'Paymail.Example');
    const address = verp.returnPath(id);
    assert.match(address, /^bounce\+65f0c0ffee0000000000abcd-[0-9a-f]{12}@paymail\.example$/);
    assert.equal(verp.mailIdOf(address), id);
    assert.equal(verp.mailIdOf(address.toUpperCase()), id);
    // After a rotation (a new first key), addresses signed with the old key still verify.
    assert.equal(createVerp([keyB, keyA], 'paymail.example').mailIdOf(address), id);
    assert.equal(createVerp([keyB], 'paymail.example').mailIdOf(address), undefined);
  });

  it('refuses forged tags, other ids, other domains and other addresses', () => {
    const verp = createVerp([keyA], 'paymail.example');
    const address = verp.returnPath(id);
    const tag = address.slice(address.indexOf('-') + 1, address.indexOf('@'));
    const flipped = tag.slice(0, -1) + (tag.endsWith('0') ? '1' : '0');
    assert.equal(verp.mailIdOf(`bounce+${id}-${flipped}@paymail.example`), undefined);
    assert.equal(verp.mailIdOf(`bounce+65f0c0ffee0000000000abce-${tag}@paymail.example`), undefined);
    assert.equal(verp.mailIdOf(address.replace('paymail.example', 'evil.example')), undefined);
    assert.equal(verp.mailIdOf('orders+abc@paymail.example'), undefined);
    assert.ok(verp.isBounceAddress(`bounce+${id}-${flipped}@paymail.example`));
    assert.ok(!verp.isBounceAddress('orders+abc@paymail.example'));
  });
});

describe('RESEND <ref> new@address', () => {
  const cases: Array<[string, { subject?: string; text?: string }, unknown]> = [
    ['first body line of a reply', { subject: 'Re: Undeliverable: the pay-link for order BK-4711', text: 'RESEND BK-4711 anna.rossi@example.org\n\n> The pay-link for order BK-4711' }, { verb: 'RESEND', reference: 'BK-4711', argument: 'anna.rossi@example.org', from: 'body' }],
    ['in the subject, any case', { subject: 'resend BK-1 <Anna@Example.org>' }, { verb: 'RESEND', reference: 'BK-1', argument: '<Anna@Example.org>', from: 'subject' }],
    ['a long address (beyond the short argument of EXTEND)', { subject: `RESEND BK-1 ${'a'.repeat(50)}@example.org` }, { verb: 'RESEND', reference: 'BK-1', argument: `${'a'.repeat(50)}@example.org`, from: 'subject' }],
    ['a malformed address is still the command (the reply names it)', { subject: 'RESEND BK-1 anna@@example' }, { verb: 'RESEND', reference: 'BK-1', argument: 'anna@@example', from: 'subject' }],
    ['a sentence after RESEND is no command', { subject: 'Resend BK-1 tomorrow please' }, undefined],
    ['plain RESEND still works', { subject: 'RESEND BK-1' }, { verb: 'RESEND', reference: 'BK-1', from: 'subject' }],
  ];
  for (const [name, mail, expected] of cases) it(name, () => assert.deepEqual(parseCommand(mail), expected));

  it('commandAddress accepts bare, <angled> and mailto: addresses, lower-cased; refuses the rest', () => {
    assert.equal(commandAddress('Anna.Rossi@Example.org'), 'anna.rossi@example.org');
    assert.equal(commandAddress('<anna@example.org>'), 'anna@example.org');
    assert.equal(commandAddress('mailto:anna@example.org'), 'anna@example.org');
    for (const bad of ['anna@@example.org', 'anna@', '@example.org', 'anna@example', 'a b@example.org']) assert.equal(commandAddress(bad), undefined, bad);
  });
});
