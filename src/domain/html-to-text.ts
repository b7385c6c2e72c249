// HTML → plain text for order mails that have no text part. One forward scan over the input
// (indexOf only, no backtracking regexes), so hostile or huge HTML costs linear time.
// Block elements end lines; table rows become one line whose cells are joined with ": " when the
// first cell is a label (Outlook-style "Importo | 129,90" tables); <blockquote> lines get a "> "
// prefix so the order parser ignores quoted history like it does in text mails. Where a mail
// client marks the start of the history (Gmail's gmail_quote, Outlook's divRplyFwdMsg, …) an
// Outlook-style separator line is written: the order parser ends the new text there, and reads
// on only when the mail is a forward (a forwarded order is in that history, unquoted).

export interface HtmlToTextOptions {
  /** Decides whether the first cell of a two-or-more cell row is a label. Default: short, no digits. */
  isLabel?: (cell: string) => boolean;
}

const BLOCK = new Set([
  'address', 'article', 'aside', 'br', 'dd', 'div', 'dl', 'dt', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5',
  'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table', 'tbody', 'thead', 'tfoot',
  'ul', 'caption', 'center',
]);
/**
 * Markers that mail clients put on the element that starts the history of a reply or forward
 * (Gmail, Outlook, Thunderbird, Yahoo, Apple Mail).
 */
const REPLY_HISTORY = ['gmail_quote', 'divrplyfwdmsg', 'appendonsend', 'moz-cite-prefix', 'yahoo_quoted', 'applemailquote'];
/** Written where the history starts: what Outlook itself puts there in its text part. */
export const HISTORY_SEPARATOR = '_'.repeat(32);
/** Elements whose content is never text for the reader. */
const SKIP = new Set(['head', 'style', 'script', 'title', 'template', 'noscript', 'xml', 'svg']);

const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', ensp: ' ', emsp: ' ', thinsp: ' ',
  euro: '€', pound: '£', yen: '¥', cent: '¢', copy: '©', reg: '®', trade: '™', deg: '°', middot: '·',
  ndash: '–', mdash: '—', hellip: '…', laquo: '«', raquo: '»', lsquo: '‘', rsquo: '’', ldquo: '“',
  rdquo: '”', bull: '•', szlig: 'ß', aelig: 'æ', AElig: 'Æ', oslash: 'ø', Oslash: 'Ø', iexcl: '¡',
  iquest: '¿', ordf: 'ª', ordm: 'º', times: '×', shy: '',
};
// Accented letters (&eacute; &Uuml; &ntilde; …) are composed from the base letter and a combining mark
// rather than listed one by one.
const MARKS: Record<string, string> = {
  grave: '\u0300', acute: '\u0301', circ: '\u0302', tilde: '\u0303', uml: '\u0308', ring: '\u030a', cedil: '\u0327',
};

function decodeNamed(name: string): string | undefined {
  const direct = NAMED[name];
  if (direct !== undefined) return direct;
  const base = name[0];
  const mark = MARKS[name.slice(1)];
  if (!base || !mark || !/^[A-Za-z]$/.test(base)) return undefined;
  const composed = (base + mark).normalize('NFC');
  return composed.length === 1 ? composed : undefined;
}

/** Decodes character references; unknown or malformed ones are kept as written. */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const amp = s.indexOf('&', i);
    if (amp < 0) break;
    out += s.slice(i, amp);
    // Entity names are short: look no further than 32 characters so the scan stays linear.
    const near = s.slice(amp + 1, amp + 33).indexOf(';');
    const semi = near < 0 ? -1 : amp + 1 + near;
    if (semi < 0) {
      out += '&';
      i = amp + 1;
      continue;
    }
    const body = s.slice(amp + 1, semi);
    let decoded: string | undefined;
    if (body.startsWith('#')) {
      const hex = body[1] === 'x' || body[1] === 'X';
      const digits = body.slice(hex ? 2 : 1);
      if (digits && (hex ? /^[0-9a-fA-F]+$/ : /^\d+$/).test(digits)) {
        const cp = parseInt(digits, hex ? 16 : 10);
        if (cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) decoded = String.fromCodePoint(cp);
      }
    } else if (/^[A-Za-z][A-Za-z0-9]*$/.test(body)) {
      decoded = decodeNamed(body);
    }
    if (decoded === undefined) {
      out += '&';
      i = amp + 1;
    } else {
      out += decoded;
      i = semi + 1;
    }
  }
  return out + s.slice(i);
}

const defaultIsLabel = (cell: string): boolean => cell.length > 0 && cell.length <= 40 && !/\d/.test(cell);

function tagName(inner: string): { name: string; closing: boolean } {
  let i = 0;
  const closing = inner[0] === '/';
  if (closing) i = 1;
  let j = i;
  while (j < inner.length && /[A-Za-z0-9:-]/.test(inner[j]!)) j++;
  return { name: inner.slice(i, j).toLowerCase(), closing };
}

export function htmlToText(html: string, options: HtmlToTextOptions = {}): string {
  const isLabel = options.isLabel ?? defaultIsLabel;
  const lines: string[] = [];
  let line = '';
  let lineQuoted = false;
  let quoteDepth = 0;
  let historyStarted = false;
  let preDepth = 0;
  let skipUntil: string | undefined;
  // Table state: cells of the current row; `cell` collects the text of the open cell.
  let row: string[] | undefined;
  let cell: string | undefined;

  const collapse = (t: string) => (preDepth > 0 ? t : t.replace(/\s+/g, ' '));

  function pushText(t: string) {
    if (!t) return;
    if (cell !== undefined) {
      cell += t;
      return;
    }
    if (line === '' && t.trim() === '') return;
    if (line === '') lineQuoted = quoteDepth > 0;
    line += t;
  }
  /** Ends the current line; `br` marks an explicit break, which alone may leave a blank line. */
  function endLine(br = false) {
    if (cell !== undefined) {
      cell += ' ';
      return;
    }
    // Only <pre> text can hold newlines of its own.
    for (const part of line.split(/\r?\n|\r/)) {
      const text = part.replace(/\u00a0/g, ' ').trim();
      if (text !== '') lines.push(lineQuoted ? `> ${text}` : text);
      else if (br && lines.length > 0 && lines[lines.length - 1] !== '') lines.push('');
    }
    line = '';
  }
  function endCell() {
    if (cell === undefined) return;
    row ??= [];
    row.push(cell.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim());
    cell = undefined;
  }
  function endRow() {
    endCell();
    if (!row) return;
    const cells = row.filter((c) => c !== '');
    row = undefined;
    if (cells.length === 0) return;
    endLine();
    const [first, ...rest] = cells;
    let text: string;
    if (rest.length > 0 && first!.endsWith(':')) text = `${first} ${rest.join(' ')}`;
    else if (rest.length > 0 && isLabel(first!)) text = `${first}: ${rest.join(' ')}`;
    else text = cells.join('  ');
    pushText(text);
    endLine();
  }

  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    const textEnd = lt < 0 ? html.length : lt;
    if (!skipUntil && textEnd > i) pushText(collapse(decodeEntities(html.slice(i, textEnd))));
    if (lt < 0) break;
    if (html.startsWith('<!--', lt)) {
      const end = html.indexOf('-->', lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    if (html.startsWith('<![CDATA[', lt)) {
      const end = html.indexOf(']]>', lt + 9);
      if (!skipUntil) pushText(collapse(html.slice(lt + 9, end < 0 ? html.length : end)));
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const gt = html.indexOf('>', lt + 1);
    if (gt < 0) {
      // A stray "<" with no tag after it is text.
      if (!skipUntil) pushText(collapse(html.slice(lt)));
      break;
    }
    const { name, closing } = tagName(html.slice(lt + 1, Math.min(gt, lt + 64)));
    i = gt + 1;
    if (!name) {
      // "<!DOCTYPE", "<?xml", "< 5": not an element we care about.
      if (!/^[!?/]/.test(html[lt + 1] ?? '') && !skipUntil) pushText(collapse(html.slice(lt, gt + 1)));
      continue;
    }
    if (skipUntil) {
      if (closing && name === skipUntil) skipUntil = undefined;
      continue;
    }
    const selfClosing = html[gt - 1] === '/';
    if (SKIP.has(name) && !closing && !selfClosing) {
      skipUntil = name;
      continue;
    }
    if (!closing && !historyStarted && (name === 'div' || name === 'hr')) {
      const tag = html.slice(lt, gt).toLowerCase();
      if (REPLY_HISTORY.some((m) => tag.includes(m))) {
        endRow();
        endLine();
        lines.push(HISTORY_SEPARATOR);
        historyStarted = true;
      }
    }
    switch (name) {
      case 'tr':
        if (closing) endRow();
        else {
          endRow();
          row = [];
        }
        break;
      case 'td':
      case 'th':
        endCell();
        if (!closing) {
          row ??= [];
          cell = '';
        }
        break;
      case 'blockquote':
        endRow();
        endLine();
        quoteDepth = Math.max(0, quoteDepth + (closing ? -1 : 1));
        break;
      case 'pre':
        endLine();
        preDepth = Math.max(0, preDepth + (closing ? -1 : 1));
        break;
      default:
        if (BLOCK.has(name)) {
          if (name === 'table' && closing) endRow();
          endLine(name === 'br');
        }
    }
  }
  endRow();
  endLine();
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}
