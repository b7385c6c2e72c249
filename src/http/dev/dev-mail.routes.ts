// /dev/mail: the mails the outbox captured instead of relaying (no OUTBOUND_SMTP_URL), so a
// developer can read the pay-link mail in a browser. Development only: the composition root
// mounts it only when NODE_ENV != production. Plain server-rendered HTML, everything escaped;
// the captured mail HTML is served on its own URL into a sandboxed iframe with a CSP that
// blocks scripts, because mail HTML carries merchant-provided text.
import { Router, type RouterContext } from '@koa/router';
import Handlebars from 'handlebars';
import { type OutboxRepository } from '../../db/outbox.repository.ts';
import { type CapturedAttachment } from '../../mail/transport.ts';

const esc = (v: unknown): string => Handlebars.Utils.escapeExpression(v == null ? '' : String(v));

const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data:",
  "frame-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

// The mail itself: no script, no network; images only as data: URLs (the QR is inlined at capture).
// `sandbox` applies even when the URL is opened directly rather than through the iframe.
const MAIL_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
  'sandbox allow-popups allow-popups-to-escape-sandbox',
].join('; ');

const STYLE = `
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}p.lead{color:#6b7280;margin:0 0 20px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#6b7280;background:#f3f4f6}
a{color:#4338ca}.muted{color:#6b7280}.nowrap{white-space:nowrap}
.st{display:inline-block;border-radius:999px;padding:0 8px;font-size:12px;font-weight:600}
.st-sent{background:#dcfce7;color:#166534}.st-pending,.st-sending{background:#fef9c3;color:#854d0e}
.st-dead{background:#fee2e2;color:#991b1b}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #e5e7eb;padding:14px 16px;margin:0 0 20px}
dt{color:#6b7280}dd{margin:0;word-break:break-all}
iframe{width:100%;height:1100px;border:1px solid #e5e7eb;background:#fff}
pre{background:#fff;border:1px solid #e5e7eb;padding:14px 16px;white-space:pre-wrap;word-break:break-word}
h2{font-size:16px;margin:24px 0 8px}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

function when(d: Date | null | undefined): string {
  return d ? `${new Date(d).toISOString().slice(0, 19).replace('T', ' ')} UTC` : '—';
}

function status(s: string): string {
  return `<span class="st st-${esc(s)}">${esc(s)}</span>`;
}

function send(ctx: RouterContext, code: number, html: string, csp = PAGE_CSP): void {
  ctx.status = code;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', csp);
  ctx.body = html;
}

function notFound(ctx: RouterContext, what: string): void {
  send(ctx, 404, layout('Not found', `<h1>Not found</h1><p class="lead">${esc(what)}</p><p><a href="/dev/mail">All mails</a></p>`));
}

/** As stored: lean reads give the bytes back as a BSON Binary, not a Buffer. */
type StoredAttachment = Omit<CapturedAttachment, 'content'> & { content?: Buffer | { buffer: Uint8Array } | null };

/** A type we pass on as is (`type/subtype` plus simple parameters); anything else is served as bytes. */
const SAFE_CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+(?:\s*;\s*[\w.+-]+=(?:[\w.+-]+|"[\w.+ -]*"))*$/;

/**
 * `Content-Disposition: attachment` with a name that cannot leave the download folder or break the
 * header: the last path segment, control characters and quotes dropped; an ASCII `filename` for
 * every client plus an RFC 6266 `filename*` when the name has other characters.
 */
function attachmentDisposition(name: string): string {
  const base = (name.split(/[\\/]/).pop() ?? '')
    .replace(/[\u0000-\u001f\u007f"]/g, '')
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 200);
  const safe = base || 'attachment';
  const ascii = safe.replace(/[^\w.\- ]/g, '_');
  return ascii === safe ? `attachment; filename="${ascii}"` : `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(safe)}`;
}

function attachmentBytes(a: StoredAttachment): Buffer | undefined {
  const c = a.content;
  if (!c) return undefined;
  return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer);
}

/** http(s) links of the text part, so a developer can open the pay-link from the page. */
function linksIn(text: string): string[] {
  return [...new Set(text.match(/https?:\/\/[^\s<>"')\]]+/g) ?? [])];
}

/** The files a reader would save (not the inline images the HTML shows), with download links. */
function attachmentList(id: string, attachments: StoredAttachment[]): string {
  const rows = attachments
    .map((a, n) => ({ a, n }))
    .filter(({ a }) => !a.inline)
    .map(({ a, n }) => {
      const name = a.content
        ? `<a href="/dev/mail/${id}/attachments/${n}" download>${esc(a.filename)}</a>`
        : `${esc(a.filename)} <span class="muted">(too large to keep for this page)</span>`;
      return `<li>${name} <span class="muted">${esc(a.contentType)} · ${esc(a.size)} bytes</span></li>`;
    });
  return rows.length ? `<h2>Attachments</h2><ul>${rows.join('')}</ul>` : '';
}

export interface DevMailRouterOptions {
  /** The storage seam's outbox (src/db/outbox.repository.ts). */
  repos: { outbox: OutboxRepository };
  /** How many mails the list shows (newest first). */
  limit?: number;
}

export function devMailRouter(opts: DevMailRouterOptions): Router {
  const findMail = (id: string) => opts.repos.outbox.withCapture(id);
  const limit = opts.limit ?? 200;
  const router = new Router();

  router.get('/dev/mail', async (ctx) => {
    const mails = await opts.repos.outbox.recent(limit);
    const rows = mails
      .map((m) => {
        const id = esc(String(m._id));
        const subject = m.captured?.subject
          ? `<a href="/dev/mail/${id}">${esc(m.captured.subject)}</a>`
          : `<a href="/dev/mail/${id}" class="muted">(not rendered yet)</a>`;
        return `<tr><td class="nowrap">${esc(when(m.createdAt))}</td><td>${esc(m.template)} <span class="muted">${esc(m.locale)}</span></td><td>${subject}</td><td>${esc((m.to ?? []).join(', '))}</td><td>${esc((m.cc ?? []).join(', '))}</td><td>${status(m.status)}</td></tr>`;
      })
      .join('');
    const table = mails.length
      ? `<table><thead><tr><th>Time</th><th>Template</th><th>Subject</th><th>To</th><th>Cc</th><th>Status</th></tr></thead><tbody>${rows}</tbody></table>`
      : '<p>No mail yet. Send an order mail to a merchant’s inbound address and reload.</p>';
    send(
      ctx,
      200,
      layout(
        'Captured mail · paymail',
        `<h1>Captured mail</h1><p class="lead">Outbound mail is captured here because OUTBOUND_SMTP_URL is not set (development only). Newest first. <a href="/dev/mail">Reload</a></p>${table}`,
      ),
    );
  });

  router.get('/dev/mail/:id', async (ctx) => {
    const m = await findMail(ctx.params.id ?? '');
    if (!m) return notFound(ctx, 'No mail with this id.');
    const id = esc(String(m._id));
    const c = m.captured;
    const links = linksIn(c?.text ?? '');
    const facts: Array<[string, string]> = [
      ['Subject', esc(c?.subject ?? '(not rendered yet)')],
      ['From', esc(c?.from ?? '')],
      ['To', esc(c?.to ?? (m.to ?? []).join(', '))],
      ['Cc', esc(c?.cc ?? (m.cc ?? []).join(', ')) || '—'],
      ['Reply-To', esc(m.replyTo ?? '') || '—'],
      ['Message-ID', esc(m.messageId)],
      ['Template', `${esc(m.template)} (${esc(m.locale)})`],
      ['Status', `${status(m.status)} after ${esc(m.attempts)} attempt(s)${m.lastError ? ` — ${esc(m.lastError)}` : ''}`],
      ['Created', esc(when((m as { createdAt?: Date }).createdAt))],
      ['Sent', esc(when(m.sentAt))],
    ];
    const body = [
      `<p><a href="/dev/mail">← All mails</a></p>`,
      `<h1>${esc(c?.subject ?? 'Mail')}</h1>`,
      `<dl>${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`,
      links.length
        ? `<h2>Links</h2><ul>${links.map((l) => `<li><a href="${esc(l)}" target="_blank" rel="noopener noreferrer">${esc(l)}</a></li>`).join('')}</ul>`
        : '',
      attachmentList(id, c?.attachments ?? []),
      c?.html
        ? `<h2>HTML part</h2><iframe src="/dev/mail/${id}/html" sandbox="allow-popups allow-popups-to-escape-sandbox" title="HTML part of the mail" referrerpolicy="no-referrer"></iframe>`
        : '',
      c ? `<h2>Text part</h2><pre>${esc(c.text ?? '')}</pre>` : '<p class="muted">The worker has not rendered this mail yet.</p>',
    ].join('');
    send(ctx, 200, layout(`${c?.subject ?? 'Mail'} · paymail`, body));
  });

  router.get('/dev/mail/:id/attachments/:n', async (ctx) => {
    const m = await findMail(ctx.params.id ?? '');
    const n = /^\d{1,3}$/.test(ctx.params.n ?? '') ? Number(ctx.params.n) : -1;
    const a = m?.captured?.attachments?.[n];
    const bytes = a && !a.inline ? attachmentBytes(a) : undefined;
    if (!a || !bytes) return notFound(ctx, 'No such attachment.');
    ctx.status = 200;
    ctx.set('Content-Type', SAFE_CONTENT_TYPE.test(a.contentType ?? '') ? a.contentType : 'application/octet-stream');
    ctx.set('Content-Disposition', attachmentDisposition(a.filename ?? ''));
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', MAIL_CSP);
    ctx.body = bytes;
  });

  router.get('/dev/mail/:id/html', async (ctx) => {
    const m = await findMail(ctx.params.id ?? '');
    if (!m?.captured?.html) return notFound(ctx, 'No captured HTML for this id.');
    send(ctx, 200, m.captured.html, MAIL_CSP);
    // The detail page frames this response; the app's default forbids framing altogether.
    ctx.set('X-Frame-Options', 'SAMEORIGIN');
  });

  return router;
}
