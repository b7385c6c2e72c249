// The issuing-country table behind src/domain/bin-table.ts: curated by hand, not downloaded.
// Each row is [prefix or "from-to" range of equal-length prefixes, ISO 3166-1 alpha-2 country,
// issuer or scheme name]. Sources, in order of confidence (see the header of bin-table.ts):
//   1. the sandbox test cards of SPEC.md and the acquirer test numbers published by the card
//      schemes and large acquirers (all US-issued test ranges);
//   2. the sandbox country test cards: "400000" followed by the ISO 3166-1 numeric code of a
//      country (the convention of Stripe's international test cards), generated below;
//   3. domestic card schemes whose ranges are public and belong to one country by definition
//      (Mir, Elo, Hipercard, Hiper, Naranja, Verve, Dankort, Bancontact, Troy), with the ranges
//      cross-checked against the credit-card-type package that card-validator uses;
//   4. international schemes that issue mostly at home (JCB → JP, UnionPay → CN): a fallback
//      only; a longer prefix above always wins.

export type BinRow = readonly [prefix: string, country: string, issuer?: string];

const SANDBOX = 'paymail sandbox';

/** ISO 3166-1 numeric codes of the countries with a sandbox country test card. */
const COUNTRY_NUMERIC: Readonly<Record<string, string>> = {
  AE: '784', AT: '040', AU: '036', BE: '056', BG: '100', BR: '076', CA: '124', CH: '756', CY: '196',
  CZ: '203', DE: '276', DK: '208', EE: '233', ES: '724', FI: '246', FR: '250', GB: '826', GR: '300',
  HK: '344', HR: '191', HU: '348', IE: '372', IN: '356', IT: '380', JP: '392', LT: '440', LU: '442',
  LV: '428', MT: '470', MX: '484', MY: '458', NL: '528', NO: '578', NZ: '554', PL: '616', PT: '620',
  RO: '642', SE: '752', SG: '702', SI: '705', SK: '703', TH: '764', US: '840',
};

export const BIN_ROWS: readonly BinRow[] = [
  // 1. Sandbox cards (SPEC "Sandbox acquirer test cards") and well-known scheme test numbers.
  ['424242', 'US', SANDBOX],
  ['555555', 'US', SANDBOX],
  ['378282', 'US', SANDBOX],
  ['400000', 'US', SANDBOX],
  ['411111', 'US', SANDBOX],
  ['401288', 'US', SANDBOX],
  ['400005', 'US', SANDBOX],
  ['510510', 'US', SANDBOX],
  ['520082', 'US', SANDBOX],
  ['222300', 'US', SANDBOX],
  ['371449', 'US', SANDBOX],
  ['601111', 'US', SANDBOX],
  ['305693', 'US', SANDBOX],
  ['353011', 'JP', SANDBOX],
  ['356600', 'JP', SANDBOX],
  ['620000', 'CN', SANDBOX],

  // 2. Sandbox country test cards: 400000 + ISO numeric country code (e.g. 4000 0038 0000 0008 → IT).
  ...Object.entries(COUNTRY_NUMERIC).map(([cc, num]): BinRow => [`400000${num}`, cc, SANDBOX]),

  // 3. Domestic schemes.
  ['2200-2204', 'RU', 'Mir'],
  ['401178-401179', 'BR', 'Elo'],
  ['431274', 'BR', 'Elo'],
  ['438935', 'BR', 'Elo'],
  ['451416', 'BR', 'Elo'],
  ['457393', 'BR', 'Elo'],
  ['457631-457632', 'BR', 'Elo'],
  ['504175', 'BR', 'Elo'],
  ['506699-506778', 'BR', 'Elo'],
  ['509000-509999', 'BR', 'Elo'],
  ['627780', 'BR', 'Elo'],
  ['636297', 'BR', 'Elo'],
  ['636368', 'BR', 'Elo'],
  ['650031-650033', 'BR', 'Elo'],
  ['650035-650051', 'BR', 'Elo'],
  ['650405-650439', 'BR', 'Elo'],
  ['650485-650538', 'BR', 'Elo'],
  ['650541-650598', 'BR', 'Elo'],
  ['650700-650718', 'BR', 'Elo'],
  ['650720-650727', 'BR', 'Elo'],
  ['650901-650978', 'BR', 'Elo'],
  ['651652-651679', 'BR', 'Elo'],
  ['655000-655019', 'BR', 'Elo'],
  ['655021-655058', 'BR', 'Elo'],
  ['606282', 'BR', 'Hipercard'],
  ['637095', 'BR', 'Hiper'],
  ['637568', 'BR', 'Hiper'],
  ['637599', 'BR', 'Hiper'],
  ['637609', 'BR', 'Hiper'],
  ['637612', 'BR', 'Hiper'],
  ['63737423', 'BR', 'Hiper'],
  ['63743358', 'BR', 'Hiper'],
  ['589562', 'AR', 'Tarjeta Naranja'],
  ['402918', 'AR', 'Tarjeta Naranja'],
  ['527572', 'AR', 'Tarjeta Naranja'],
  ['506099-506198', 'NG', 'Verve'],
  ['507865-507964', 'NG', 'Verve'],
  ['650002-650027', 'NG', 'Verve'],
  ['5019', 'DK', 'Dankort'],
  ['6703', 'BE', 'Bancontact'],
  ['9792', 'TR', 'Troy'],

  // 4. Scheme-level fallbacks (mostly domestic issuing).
  ['3528-3589', 'JP', 'JCB'],
  ['62', 'CN', 'UnionPay'],
];
