// Reads a PDF the way a person would: its text with poppler's pdftotext, and the QR codes on its
// pages with zbar after poppler rasterised them (pdftoppm). CI installs both (.ci/run).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function withPdf<T>(pdf: Buffer, fn: (file: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'paymail-pdf-'));
  try {
    const file = path.join(dir, 'doc.pdf');
    await writeFile(file, pdf);
    return await fn(file, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The text of every page (UTF-8, reading order). */
export function pdfText(pdf: Buffer): Promise<string> {
  return withPdf(pdf, async (file) => (await run('pdftotext', ['-enc', 'UTF-8', file, '-'])).stdout);
}

/** The contents of the QR codes found on the pages rendered at `dpi`; [] when there is none. */
export function pdfQrCodes(pdf: Buffer, dpi = 200): Promise<string[]> {
  return withPdf(pdf, async (file, dir) => {
    await run('pdftoppm', ['-png', '-r', String(dpi), file, path.join(dir, 'page')]);
    const pages = (await readdir(dir)).filter((f) => f.endsWith('.png')).sort();
    const found: string[] = [];
    for (const page of pages) {
      try {
        const { stdout } = await run('zbarimg', ['--quiet', '--raw', '-Sdisable', '-Sqrcode.enable', path.join(dir, page)]);
        found.push(...stdout.split('\n').filter(Boolean));
      } catch (err) {
        // zbarimg exits 4 when a page has no symbol.
        if ((err as { code?: number }).code !== 4) throw err;
      }
    }
    return found;
  });
}

/**
 * Saves the first page rendered at `dpi` as a PNG at `out` (the receipt's "screenshot"), and
 * returns its width and height in pixels, read from the PNG header.
 */
export function savePdfPage(pdf: Buffer, out: string, dpi = 110): Promise<{ width: number; height: number }> {
  return withPdf(pdf, async (file) => {
    await mkdir(path.dirname(out), { recursive: true });
    await run('pdftoppm', ['-png', '-r', String(dpi), '-f', '1', '-l', '1', '-singlefile', file, out.replace(/\.png$/, '')]);
    const png = await readFile(out);
    return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
  });
}

/** Whitespace as one plain space: Intl's narrow and no-break spaces, pdftotext's line breaks. */
export const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();
