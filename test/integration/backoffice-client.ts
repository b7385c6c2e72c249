// Test harness for the back-office integration tests (not a test file itself): an in-process
// paymail HTTP app with the back office mounted on a real port, and a small cookie-keeping HTTP
// client that logs in through the real forms (CSRF tokens included).
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createBackofficeRouter } from '../../src/http/backoffice/backoffice.routes.ts';
import { createBackofficeViews } from '../../src/http/backoffice/backoffice.views.ts';
import { createRenewalRouter } from '../../src/http/checkout/renewal.routes.ts';
import { createRenewalService, type RenewalService } from '../../src/services/renewal.service.ts';
import { createPlanService } from '../../src/services/plan.service.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { createBrandRouter } from '../../src/http/brand/brand.routes.ts';
import { createBrandingService } from '../../src/services/branding.service.ts';
import { deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { type AcquirerSettings } from '../../src/services/acquirer/acquirer-settings.ts';
import { createBackofficeAuthService, type BackofficeAuthDeps } from '../../src/services/backoffice-auth.service.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createOrderAdminService } from '../../src/services/order-admin.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantAdminService } from '../../src/services/merchant-admin.service.ts';
import { createRefundService, type RefundService } from '../../src/services/refund.service.ts';
import { type SandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createMailRenderer } from '../../src/mail/renderer.ts';
import { createReceiptDocuments } from '../../src/services/receipt-document.service.ts';
import { createReceiptProofs } from '../../src/services/receipt-proof.service.ts';
import { type ReceiptKeyRing } from '../../src/services/signing-keys.ts';
import { repos } from '../helpers/db.ts';
import { createSavedCardChargeService } from '../../src/services/saved-card-charge.service.ts';

export const KEYS: LinkKey[] = [{ kid: 'bo1', secret: 'backoffice-test-secret-backoffice-test-secret' }];
export const MAIL_DOMAIN = 'paymail.test';
export const MAX_DAYS = 60;

export interface BackofficeApp {
  base: string;
  orders: OrderService;
  checkout: CheckoutService;
  refunds: RefundService;
  acquirer: SandboxAcquirer;
  router: ReturnType<typeof createBackofficeRouter>;
  renewals: RenewalService;
  close(): Promise<void>;
}

/** One paymail HTTP instance (checkout + back office) on 127.0.0.1:<random>. */
export async function startBackofficeApp(
  opts: { now?: () => Date; auth?: Omit<BackofficeAuthDeps, 'repos'>; logLines?: string[]; webhookAllowPrivate?: boolean; receiptKeys?: ReceiptKeyRing; acquirerSettings?: AcquirerSettings } = {},
): Promise<BackofficeApp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const templatesDir = path.resolve('templates');
  const now = opts.now ?? (() => new Date());
  const orders = createOrderService({ repos, publicUrl: base, mailDomain: MAIL_DOMAIN, maxLinkLifetimeDays: MAX_DAYS, linkKeys: KEYS, now });
  // With its stored vault: saved cards (issue 12 part 3) work when a merchant enables them.
  const acquirer = createSandboxAcquirer({ latencyMs: 5, vault: repos.cardVault });
  const events = createEventsService({ repos, now });
  // Signed receipt proofs when the test gives a key ring (the PDF receipt then carries the proof's QR).
  const proofs = opts.receiptKeys ? createReceiptProofs({ keys: opts.receiptKeys, publicUrl: base }) : undefined;
  // Real receipts and events as in production (events are only queued for merchants with a webhook URL).
  const checkout = createCheckoutService({ repos,
    acquirer,
    events,
    linkKeys: KEYS,
    mailDomain: MAIL_DOMAIN,
    linkFor: orders.linkFor,
    ...(proofs ? { proofs } : {}),
  });
  // The mail renderer (MJML compiled at creation) only once a test downloads a receipt.
  let renderer: ReturnType<typeof createMailRenderer> | undefined;
  const receipts = createReceiptDocuments({
    renderer: { receiptPdf: async (req) => (await (renderer ??= createMailRenderer({ templatesDir, publicUrl: base }))).receiptPdf(req) },
    proofs,
  });
  const refunds = createRefundService({ repos, acquirer, events, now });
  // Issue 13 part 4: renewals of expired links (the expired page's request, the order page's button).
  const renewals = createRenewalService({ repos, mailDomain: MAIL_DOMAIN, publicUrl: base, maxLinkLifetimeDays: MAX_DAYS, linkFor: orders.linkFor, events, now });
  const router = createBackofficeRouter({ repos,
    auth: createBackofficeAuthService({ repos, now, ...opts.auth }),
    orderAdmin: createOrderAdminService({ repos, orders, maxLinkLifetimeDays: MAX_DAYS, refunds, now }),
    refunds,
    merchantAdmin: createMerchantAdminService({ repos, maxLinkLifetimeDays: MAX_DAYS, now, webhookTargets: { allowPrivate: opts.webhookAllowPrivate ?? false } }),
    checkout,
    savedCardCharges: createSavedCardChargeService({ repos, orders, checkout, now }),
    receipts,
    renewals,
    // Issue 13 part 1: the order page's "Ask for the balance" button.
    plans: createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: MAX_DAYS, now }),
    views: createBackofficeViews(templatesDir),
    ...(opts.acquirerSettings ? { acquirerSettings: opts.acquirerSettings } : {}),
    csrfKey: deriveCsrfKey(KEYS[0]!.secret),
    production: false,
    maxLinkLifetimeDays: MAX_DAYS,
    now,
  });
  const app = createHttpApp({
    logger: opts.logLines ? createLogger('debug', { write: (line: string) => void opts.logLines!.push(line) }) : createLogger('silent'),
    views: createViews({ templatesDir }),
    checkout: { service: checkout, csrfKey: deriveCsrfKey(KEYS[0]!.secret), receipts, askNewLink: true },
    extraRouters: [router, createRenewalRouter({ repos, checkout, renewals, views: createViews({ templatesDir }), csrfKey: deriveCsrfKey(KEYS[0]!.secret), linkKeys: KEYS }), createBrandRouter({ branding: createBrandingService({ repos }) })],
    production: false,
  });
  server.on('request', app.callback());
  return {
    base,
    orders,
    checkout,
    refunds,
    acquirer,
    router,
    renewals,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface Reply {
  status: number;
  location: string;
  html: string;
  headers: Headers;
  setCookies: string[];
}

/** A browser stand-in: keeps cookies, follows nothing, reads CSRF tokens from the last page. */
export class BoClient {
  readonly cookies: Map<string, string>;
  base: string;
  csrf = '';

  constructor(base: string, cookies = new Map<string, string>()) {
    this.base = base;
    this.cookies = cookies;
  }

  /** The same browser (cookie jar) talking to another instance. */
  on(base: string): BoClient {
    const c = new BoClient(base, this.cookies);
    c.csrf = this.csrf;
    return c;
  }

  async request(method: 'GET' | 'POST', pathAndQuery: string, form?: Record<string, string>): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'text/html' };
    if (this.cookies.size) headers['cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(`${this.base}${pathAndQuery}`, {
      method,
      redirect: 'manual',
      headers,
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (/Max-Age=0/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const html = res.headers.get('content-type')?.includes('html') ? await res.text() : '';
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, location: res.headers.get('location') ?? '', html, headers: res.headers, setCookies };
  }

  get(p: string): Promise<Reply> {
    return this.request('GET', p);
  }

  /** POSTs a form with the current CSRF token unless the form sets its own `_csrf`. */
  post(p: string, form: Record<string, string> = {}): Promise<Reply> {
    return this.request('POST', p, { _csrf: this.csrf, ...form });
  }

  async login(email: string, password: string): Promise<Reply> {
    await this.get('/backoffice/login');
    const r = await this.post('/backoffice/login', { email, password });
    if (r.status === 303) await this.get('/backoffice/orders'); // picks up the session's CSRF token
    return r;
  }
}

/** Text of the page without tags, for assertions on what a person reads. */
export const textOf = (html: string): string =>
  html.replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/&#x27;/g, "'").replace(/&quot;/g, '"').replace(/\s+/g, ' ');
