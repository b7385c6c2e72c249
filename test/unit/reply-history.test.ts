// Where a reply's quoted history begins (src/domain/order-mail.ts, firstStop): real samples from
// public reply-parser projects (test/fixtures/reply-history/, see its README for sources and
// licences) and layouts of the common clients in English, Italian, French, German and Spanish.
// Everything from the history's first line on is not read as the new order.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { firstStop, parseOrderMail } from '../../src/domain/order-mail.ts';

const DIR = new URL('../fixtures/reply-history/', import.meta.url);

/** file → the first line (trimmed) that is no longer the new text. */
const SAMPLES: Record<string, string> = {
  'zapier-headers-no-delimiter.txt': 'From: Dan Watson [mailto:user@host.com]',
  'zapier-it-headers-no-delimiter.txt': 'Da: Dan Watson [mailto:user@host.com]',
  'zapier-gmail-wrapped.txt': 'On Wed, May 18, 2016 at 11:10 PM Steven Scott <notifications@github.com>',
  'zapier-it-partial-quote-header.txt': 'Il 19/dic/2015 19:37, "Claudio Cardinali" <claudio@csolution.it> ha scritto:',
  'talon-outlook.txt': 'From: xxx@xxx.mailgun.org [mailto:xxx@xxx.mailgun.org]',
  'talon-thunderbird.txt': 'On 04/02/2012 06:26 PM, Megan One wrote:',
  'talon-apple-mail.txt': 'On Apr 3, 2012, at 4:19 PM, bob wrote:',
  'talon-iphone.txt': 'Sent from my iPhone',
  'talon-german-from-block.txt': 'Von: somebody@example.com',
  'talon-french-from-block.txt': 'De : Brendan xxx [mailto:brendan.xxx@xxx.com]',
  'talon-french-wrote.txt': 'Le 23 janv. 2015 à 22:03, Brendan xxx <brendan.xxx@xxx.com<mailto:brendan.xxx@xxx.com>> a écrit:',
  'talon-bold-from-block.txt': '*From:* bob@example.com [mailto:',
  'talon-three-line-header.txt': 'On Nov 30, 2011, at 12:47 PM, Somebody <',
  'talon-from-block-starts-with-date.txt': 'Date: Wed, 16 May 2012 00:15:02 -0600',
  'willdurand-zimbra-fr.txt': '- Le 2021-04-09 23:25, Toby Flenderson a écrit :',
  'willdurand-w10-mail.txt': 'Sent from Mail for Windows 10',
};

/** Our own samples of layouts the reference sets lack: [name, reply text, first history line]. */
const LAYOUTS: Array<[string, string, string]> = [
  ['Outlook desktop, Spanish', 'Importe: 10\n\nDe: Tienda <t@x.es>\nEnviado: viernes, 27 de febrero de 2026 17:02\nPara: pedidos@x\nAsunto: Pedido', 'De: Tienda <t@x.es>'],
  ['Outlook desktop, Italian', 'Importo: 10\n\nDa: Negozio <n@x.it>\nInviato: venerdì 27 febbraio 2026 17:02\nA: ordini@x\nOggetto: Ordine', 'Da: Negozio <n@x.it>'],
  ['Outlook for Mac, German', 'Betrag: 10\n\nVon: Laden <l@x.de>\nDatum: Freitag, 27. Februar 2026 um 17:02\nAn: bestellungen@x\nBetreff: Bestellung', 'Von: Laden <l@x.de>'],
  ['Outlook web (separator line)', 'Amount: 10\n\n________________________________\nFrom: Shop <s@x.com>\nSent: Friday, February 27, 2026 5:02 PM', '________________________________'],
  ['Outlook "Original Message", French', 'Montant: 10\n-----Message d\'origine-----\nDe : Boutique', '-----Message d\'origine-----'],
  ['Samsung / Android, Spanish', 'Importe: 10\n\n-------- Mensaje original --------\nDe: Tienda', '-------- Mensaje original --------'],
  ['Gmail, German, wrapped before the address', 'Betrag: 10\n\nAm Fr., 27. Feb. 2026 um 17:02 Uhr schrieb Laden Müller <\nladen@x.de>:\n\n> Betrag: 20', 'Am Fr., 27. Feb. 2026 um 17:02 Uhr schrieb Laden Müller <'],
  ['Gmail, Spanish, wrapped before the verb', 'Importe: 10\n\nEl vie, 27 feb 2026 a las 17:02, Tienda Pérez (<tienda@x.es>)\nescribió:\n\n> Importe: 20', 'El vie, 27 feb 2026 a las 17:02, Tienda Pérez (<tienda@x.es>)'],
  ['Gmail, French, wrapped inside the verb', 'Montant: 10\n\nLe ven. 27 févr. 2026 à 17:02, Boutique Durand <boutique@x.fr> a\nécrit :\n\n> Montant: 20', 'Le ven. 27 févr. 2026 à 17:02, Boutique Durand <boutique@x.fr> a'],
  ['Apple Mail, Italian', 'Importo: 10\n\nIl giorno 27 feb 2026, alle ore 17:02, Negozio <n@x.it> ha scritto:\n\n> Importo: 20', 'Il giorno 27 feb 2026, alle ore 17:02, Negozio <n@x.it> ha scritto:'],
  ['iPhone, Italian', 'Importo: 10\n\nInviato da iPhone\n\nIl giorno 27 feb 2026, alle ore 17:02, Negozio <n@x.it> ha scritto:', 'Inviato da iPhone'],
  ['Android Outlook, German', 'Betrag: 10\n\nOutlook für Android herunterladen<https://aka.ms/ghei36>\n________________________________\nVon: Laden', '________________________________'],
];

describe('reply history: where the new text ends', () => {
  for (const [file, expected] of Object.entries(SAMPLES)) {
    it(`${file}`, async () => {
      const text = await readFile(new URL(file, DIR), 'utf8');
      const stop = firstStop(text);
      assert.ok(stop, 'a stop was found');
      assert.equal(text.split('\n')[stop.line - 1]!.trim(), expected);
    });
  }
  for (const [name, text, expected] of LAYOUTS) {
    it(name, () => {
      const stop = firstStop(text);
      assert.ok(stop, 'a stop was found');
      assert.equal(text.split('\n')[stop.line - 1]!.trim(), expected);
      // The order above is read alone; nothing below adds or conflicts.
      const r = parseOrderMail({ text, defaultCurrency: 'EUR', now: new Date('2026-03-02T10:00:00Z'), maxLifetimeDays: 60 });
      assert.deepEqual(r.problems, []);
      assert.equal(r.draft?.amountMinor, 1000);
      assert.equal(r.fieldsFound, 1);
    });
  }

  it('an order that merely mentions a date or a sender is not cut', () => {
    const text = 'Amount: 10\nFrom: the shop window\nReference: A-1\nDate: tomorrow\nDescription: lamp';
    assert.equal(firstStop(text), undefined);
    const r = parseOrderMail({ text, defaultCurrency: 'EUR', now: new Date('2026-03-02T10:00:00Z'), maxLifetimeDays: 60 });
    assert.equal(r.draft?.description, 'lamp');
  });
});
