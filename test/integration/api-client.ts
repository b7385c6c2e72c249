// Test harness for the server API's integration tests (not a test file itself): an in-process
// paymail HTTP app with /api/v1 mounted on a real port (the same services as src/server.ts wires:
// order creation, back-office cancel, refunds, events), a merchant with API keys, and a small
// JSON client. Another area of the API builds its tests on the same harness.
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { type MerchantDoc } from '../../src/db/merchants.repository.ts';
import { type LinkKey } from '../../src/domain/pay-link.ts';
import { createApiRouter } from '../../src/http/api/api.routes.ts';
import { createSavedCardChargeService } from '../../src/services/saved-card-charge.service.ts';
import { createHttpApp } from '../../src/http/app.ts';
import { deriveCsrfKey } from '../../src/http/middleware/csrf.ts';
import { createViews } from '../../src/http/views.ts';
import { createLogger } from '../../src/logger.ts';
import { createSandboxAcquirer, type SandboxAcquirer } from '../../src/services/acquirer/sandbox-acquirer.ts';
import { createApiKeyService, type ApiKeyService } from '../../src/services/api-key.service.ts';
import { createCheckoutService, type CheckoutService } from '../../src/services/checkout.service.ts';
import { createEventsService } from '../../src/services/events.service.ts';
import { createMerchantService, type CreatedMerchant } from '../../src/services/merchant.service.ts';
import { createOrderAdminService } from '../../src/services/order-admin.service.ts';
import { createOrderService, type OrderService } from '../../src/services/order.service.ts';
import { createRefundService, type RefundService } from '../../src/services/refund.service.ts';
import { createPlanService } from '../../src/services/plan.service.ts';
import { repos } from '../helpers/db.ts';

export const API_KEYS: LinkKey[] = [{ kid: 'api1', secret: 'api-test-secret-api-test-secret-api-test' }];
export const API_MAIL_DOMAIN = 'paymail.test';
export const API_MAX_DAYS = 60;

export interface ApiReply<T = any> {
  status: number;
  headers: Headers;
  /** The parsed JSON body (undefined when there is none). */
  body: T;
  text: string;
}

export interface ApiApp {
  base: string;
  orders: OrderService;
  checkout: CheckoutService;
  refunds: RefundService;
  acquirer: SandboxAcquirer;
  apiKeys: ApiKeyService;
  /** A merchant created with the merchant service (its credentials as created). */
  newMerchant(name?: string): Promise<{ created: CreatedMerchant; merchant: MerchantDoc }>;
  /** One HTTP request to the app: JSON in, JSON out. */
  request<T = any>(method: string, pathAndQuery: string, opts?: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<ApiReply<T>>;
  close(): Promise<void>;
}

/** One paymail HTTP instance with the server API on 127.0.0.1:<random>. */
export async function startApiApp(opts: { now?: () => Date; rateLimit?: number; idempotencyWaitMs?: number } = {}): Promise<ApiApp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const now = opts.now ?? (() => new Date());
  const orders = createOrderService({ repos, publicUrl: base, mailDomain: API_MAIL_DOMAIN, maxLinkLifetimeDays: API_MAX_DAYS, linkKeys: API_KEYS, now });
  // With its stored vault: saved cards (issue 12 part 3) for merchants that enable them.
  const acquirer = createSandboxAcquirer({ latencyMs: 5, vault: repos.cardVault });
  const events = createEventsService({ repos, now });
  const checkout = createCheckoutService({ repos, acquirer, events, linkKeys: API_KEYS, mailDomain: API_MAIL_DOMAIN, linkFor: orders.linkFor });
  const refunds = createRefundService({ repos, acquirer, events, now });
  const orderAdmin = createOrderAdminService({ repos, orders, maxLinkLifetimeDays: API_MAX_DAYS, events, refunds, now });
  const apiKeys = createApiKeyService({ repos, now });
  const savedCardCharges = createSavedCardChargeService({ repos, orders, checkout, now });
  const plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: API_MAX_DAYS, now });
  const api = createApiRouter({ repos, apiKeys, orders, orderAdmin, refunds, savedCardCharges, plans, publicUrl: base, maxLinkLifetimeDays: API_MAX_DAYS, rateLimit: opts.rateLimit ?? 10_000, idempotencyWaitMs: opts.idempotencyWaitMs, now });
  const app = createHttpApp({
    logger: createLogger('silent'),
    views: createViews({ templatesDir: path.resolve('templates') }),
    checkout: { service: checkout, csrfKey: deriveCsrfKey(API_KEYS[0]!.secret) },
    extraRouters: [api],
    production: false,
  });
  server.on('request', app.callback());
  const merchants = createMerchantService({ repos, mailDomain: API_MAIL_DOMAIN, now });
  let n = 0;
  return {
    base,
    orders,
    checkout,
    refunds,
    acquirer,
    apiKeys,
    async newMerchant(name = 'API Shop') {
      n += 1;
      const created = await merchants.create({ name, email: `shop${n}-${Date.now()}@api.example`, locale: 'en' });
      return { created, merchant: (await repos.merchants.findById(created.id))! };
    },
    async request(method, pathAndQuery, o = {}) {
      const headers: Record<string, string> = { accept: 'application/json', ...(o.headers ?? {}) };
      if (o.key) headers['authorization'] = `Bearer ${o.key}`;
      let body: string | undefined = o.rawBody;
      if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      const res = await fetch(`${base}${pathAndQuery}`, { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed as never, text };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * Checks answers against the OpenAPI document the API serves: the status must be documented for
 * the operation, and the body must match the schema of that status and content type (JSON Schema
 * 2020-12 with ajv, as OpenAPI 3.1 specifies).
 */
export async function loadConformance(app: Pick<ApiApp, 'request'>) {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const { default: addFormats } = await import('ajv-formats');
  const doc = (await app.request('GET', '/api/v1/openapi.json')).body as {
    paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> }>>;
    components: { responses: Record<string, { content: Record<string, { schema: object }> }> };
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: unknown) => void)(ajv);
  ajv.addSchema(doc as object, 'openapi');
  const checked = new Set<string>();
  return {
    doc,
    /** Which operations and statuses were checked (for a coverage assertion). */
    checked,
    check(res: ApiReply, method: string, pathTemplate: string): void {
      const op = doc.paths[pathTemplate]?.[method.toLowerCase()];
      if (!op) throw new Error(`${method} ${pathTemplate} is not in the OpenAPI document`);
      let response = op.responses[String(res.status)];
      if (!response) throw new Error(`${method} ${pathTemplate}: status ${res.status} is not documented (${res.text.slice(0, 200)})`);
      if (response.$ref) response = doc.components.responses[response.$ref.split('/').pop()!]!;
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      const media = response.content?.[type];
      if (!media) throw new Error(`${method} ${pathTemplate} ${res.status}: content type ${type} is not documented`);
      const ref = (media.schema as { $ref?: string }).$ref;
      const validate = ref ? ajv.getSchema(`openapi${ref}`) : ajv.compile(media.schema);
      if (!validate) throw new Error(`no schema ${ref}`);
      if (!validate(res.body)) throw new Error(`${method} ${pathTemplate} ${res.status}: body does not match ${ref}: ${ajv.errorsText(validate.errors)}\n${res.text.slice(0, 500)}`);
      checked.add(`${method.toUpperCase()} ${pathTemplate} ${res.status}`);
    },
  };
}
