// What makes two deliveries the same inbound message: the Message-ID read from the raw header
// block, and a hash of the body that ignores the relay-specific header lines.
import { createHash } from 'node:crypto';

const HEADER_SCAN_LIMIT = 256 * 1024;

/**
 * The Message-ID from the raw header block, without parsing the message: headers end at the first
 * empty line; folded continuation lines are joined.
 */
export function extractMessageId(raw: Buffer): string | undefined {
  const head = raw.subarray(0, Math.min(raw.length, HEADER_SCAN_LIMIT)).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? head : head.slice(0, end)).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length < 11 || line.slice(0, 11).toLowerCase() !== 'message-id:') continue;
    let value = line.slice(11);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += ' ' + lines[++i]!.trim();
    const lt = value.indexOf('<');
    const gt = value.indexOf('>', lt + 1);
    const id = lt >= 0 && gt > lt ? value.slice(lt, gt + 1) : value.trim();
    // An absurd header is no identity: fall back to the hash of the bytes.
    return id.length > 2 && id.length <= 998 && !/\s/.test(id) ? id : undefined;
  }
  return undefined;
}

/**
 * SHA-256 of the body (the bytes after the first empty line). The header block is left out: a
 * redelivery through another relay carries other Received lines but is the same message.
 */
export function bodyHash(raw: Buffer): string {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const cut = [crlf < 0 ? -1 : crlf + 4, lf < 0 ? -1 : lf + 2].filter((i) => i >= 0);
  const start = cut.length > 0 ? Math.min(...cut) : raw.length;
  return createHash('sha256').update(raw.subarray(start)).digest('hex');
}
