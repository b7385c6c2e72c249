// TLS material for the SMTP doors: the configured key/cert files, or in development a self-signed
// certificate generated once into DATA_DIR/tls and reused, so STARTTLS always works out of the box.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';
import { type Config } from '../config.ts';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** Where it came from, for the start-up log. */
  source: 'files' | 'generated' | 'cached';
}

export interface LoadSmtpTlsOptions {
  smtpTls: Config['smtpTls'];
  dataDir: string;
  production: boolean;
  /** Host name in the generated certificate (the MAIL_DOMAIN). */
  hostname?: string;
}

export async function loadSmtpTls(opts: LoadSmtpTlsOptions): Promise<TlsMaterial> {
  if (opts.smtpTls) {
    const [key, cert] = await Promise.all([readFile(opts.smtpTls.keyFile, 'utf8'), readFile(opts.smtpTls.certFile, 'utf8')]);
    return { key, cert, source: 'files' };
  }
  if (opts.production) throw new Error('SMTP_TLS_KEY_FILE and SMTP_TLS_CERT_FILE are required in production');
  const dir = path.join(opts.dataDir, 'tls');
  const keyFile = path.join(dir, 'smtp-key.pem');
  const certFile = path.join(dir, 'smtp-cert.pem');
  if (existsSync(keyFile) && existsSync(certFile)) {
    const [key, cert] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
    return { key, cert, source: 'cached' };
  }
  const host = opts.hostname ?? 'localhost';
  const notAfterDate = new Date(Date.now() + 5 * 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: host }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: host },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Write then rename, so a crash (or a second instance) never leaves half a key behind.
  const tmp = `.${process.pid}.${Date.now()}`;
  await writeFile(keyFile + tmp, pems.private, { mode: 0o600 });
  await writeFile(certFile + tmp, pems.cert, { mode: 0o644 });
  await rename(keyFile + tmp, keyFile);
  await rename(certFile + tmp, certFile);
  return { key: pems.private, cert: pems.cert, source: 'generated' };
}
