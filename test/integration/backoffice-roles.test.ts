// Every back-office route with every role, and anonymously: allowed (the route's own answer),
// denied (403, nothing changed) or sent to the log-in page (303). The expected matrix is written
// out here from the product rules, independently of src/http/backoffice/permissions.ts, and the
// test fails if the router has a route this matrix does not list. Also: tenant isolation.
import assert from 'node:assert/strict';
import { ROLES, MerchantUser, type Role } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { Refund } from '../../src/db/models/refund.model.ts';
import { WebhookDelivery } from '../../src/db/models/webhook.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createApiKeyService } from '../../src/services/api-key.service.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp, type Reply } from './backoffice-client.ts';
import { repos } from '../helpers/db.ts';

const ALL: Role[] = ['viewer', 'operator', 'accountant', 'admin'];
const OPERATIONS: Role[] = ['operator', 'admin'];
const ACCOUNTING: Role[] = ['accountant', 'admin'];
const ADMIN: Role[] = ['admin'];
const CARD = { number: '4242 4242 4242 4242', expiry: '12/39', cvc: '123', holder: 'Anna Rossi', email: 'anna@example.org' };

interface RouteCase {
  method: 'GET' | 'POST';
  /** Router path; :id is replaced by a fresh open order of the merchant. */
  path: string;
  allowed: Role[];
  query?: string;
  /** The order behind :id: open (default) or paid. */
  order?: 'paid';
  /** Values for the other path parameters (:userId, :eventId), made fresh per request. */
  params?: (ctx: { merchantId: string; orderId: string }) => Promise<Record<string, string>>;
  form?: (ctx: { password: string }) => Record<string, string>;
  /** What an allowed request answers. */
  expect: (r: Reply, ctx: { orderId: string; params: Record<string, string> }) => void | Promise<void>;
}

let userSeq = 0;
/** A fresh viewer of the merchant, for the user routes. */
const freshUser = async ({ merchantId }: { merchantId: string }) => {
  userSeq += 1;
  const u = await MerchantUser.create({ merchantId, email: `staff${userSeq}@verdi.example`, passwordHash: 'x', role: 'viewer' });
  return { userId: String(u._id) };
};
/** A dead webhook delivery of the merchant, for the replay route. */
const deadDelivery = async ({ merchantId, orderId }: { merchantId: string; orderId: string }) => {
  const eventId = `evt_matrix${++userSeq}`;
  const at = new Date();
  await WebhookDelivery.create({
    _id: eventId, dedupeKey: `matrix:${eventId}`, type: 'order.expired', merchantId, orderId, body: '{}',
    status: 'dead', attempts: 3, nextAttemptAt: at, giveUpAt: at,
  });
  return { eventId };
};
/** A fresh API key of the merchant, for the revoke route. */
const freshApiKey = async ({ merchantId }: { merchantId: string }) => ({ keyId: (await createApiKeyService({ repos }).create(merchantId)).id });
const SETTINGS_FORM = { delivery: 'merchant', linkLifetimeDays: '7', locale: 'en', timezone: 'Europe/Rome', recapHour: '7', senderDomains: '', webhookUrl: '' };

const isPage = (title: RegExp) => (r: Reply) => {
  assert.equal(r.status, 200);
  assert.match(textOf(r.html), title);
};
const redirectsTo = (to: RegExp) => (r: Reply) => {
  assert.equal(r.status, 303);
  assert.match(r.location, to);
};

const MATRIX: RouteCase[] = [
  { method: 'GET', path: '/backoffice', allowed: ALL, expect: redirectsTo(/^\/backoffice\/orders$/) },
  { method: 'GET', path: '/backoffice/orders', allowed: ALL, expect: isPage(/Orders/) },
  { method: 'GET', path: '/backoffice/orders/:id', allowed: ALL, expect: isPage(/History/) },
  {
    method: 'GET',
    path: '/backoffice/orders/:id/receipt.pdf',
    allowed: ALL,
    order: 'paid',
    expect: (r) => {
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/pdf');
      assert.match(r.headers.get('content-disposition') ?? '', /^attachment; filename="receipt-RCPT-[\w-]+\.pdf"/);
    },
  },
  { method: 'GET', path: '/backoffice/orders/new', allowed: OPERATIONS, expect: isPage(/Create a pay-link/) },
  {
    method: 'POST',
    path: '/backoffice/orders',
    allowed: OPERATIONS,
    form: () => ({ amount: '12,50', reference: '', formKey: '' }),
    expect: async (r) => {
      redirectsTo(/^\/backoffice\/orders\/ord_[\w-]+\?done=created$/)(r);
    },
  },
  // The confirmation step of cancelling a partly paid order (issue 13 part 1); this pending order goes back to its page.
  { method: 'GET', path: '/backoffice/orders/:id/cancel', allowed: OPERATIONS, expect: redirectsTo(/^\/backoffice\/orders\/ord_[\w-]+$/) },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/cancel',
    allowed: OPERATIONS,
    expect: async (r, { orderId }) => {
      redirectsTo(/\?done=cancelled$/)(r);
      assert.equal((await Order.findById(orderId).lean<OrderDoc>())!.status, 'cancelled');
    },
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/resend',
    allowed: OPERATIONS,
    expect: async (r, { orderId }) => {
      redirectsTo(/\?done=resent$/)(r);
      assert.equal(await Outbox.countDocuments({ orderId, dedupeKey: /:resend:/ }), 1);
    },
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/resend-to',
    allowed: OPERATIONS,
    form: () => ({ email: 'anna.rossi@example.org' }),
    expect: async (r, { orderId }) => {
      redirectsTo(/\?done=resentTo$/)(r);
      assert.equal((await Order.findById(orderId).lean<OrderDoc>())!.customer?.email, 'anna.rossi@example.org');
    },
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/balance',
    allowed: OPERATIONS,
    // Allowed but refused on its merits (the order is not partly paid): the handler ran, nothing was mailed.
    expect: async (r, { orderId }) => {
      assert.equal(r.status, 409);
      assert.equal(await Outbox.countDocuments({ orderId, template: 'paylink', dedupeKey: /:2$/ }), 0);
    },
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/renew',
    allowed: OPERATIONS,
    form: () => ({ days: '7' }),
    // Allowed but refused on its merits (the order is open, not expired): the handler ran, nothing changed.
    expect: (r) => assert.equal(r.status, 409),
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/extend',
    allowed: OPERATIONS,
    form: () => ({ expires: new Date(Date.now() + 20 * 86_400_000).toISOString().slice(0, 10) }),
    expect: redirectsTo(/\?done=extended$/),
  },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/refund',
    allowed: OPERATIONS,
    order: 'paid',
    form: () => ({ amount: '1,00', reason: 'matrix' }),
    expect: async (r, { orderId }) => {
      redirectsTo(/\?done=refunded$/)(r);
      assert.equal(await Refund.countDocuments({ orderId }), 1);
    },
  },
  { method: 'GET', path: '/backoffice/orders/:id/moto', allowed: OPERATIONS, expect: isPage(/Take a card by phone/) },
  {
    method: 'POST',
    path: '/backoffice/orders/:id/moto',
    allowed: OPERATIONS,
    form: () => ({ ...CARD }),
    expect: async (r, { orderId }) => {
      redirectsTo(/\?done=motoPaid$/)(r);
      const o = (await Order.findById(orderId).lean<OrderDoc>())!;
      assert.equal(o.status, 'paid');
      assert.equal(o.payment?.moto, true);
    },
  },
  // Saved cards (issue 12 part 3): an order without a customer code cannot be charged, but the role may try.
  {
    method: 'POST',
    path: '/backoffice/orders/:id/charge-saved-card',
    allowed: OPERATIONS,
    form: () => ({ amount: '5,00', currency: 'EUR', reference: 'MATRIX-CHARGE' }),
    expect: (r) => {
      assert.equal(r.status, 409);
      assert.match(textOf(r.html), /There is no such customer/);
    },
  },
  { method: 'GET', path: '/backoffice/settings', allowed: ADMIN, expect: isPage(/Orders and mails/) },
  { method: 'POST', path: '/backoffice/settings/saved-cards', allowed: ADMIN, form: () => ({ enabled: 'yes' }), expect: redirectsTo(/\?done=settingsSaved$/) },
  { method: 'POST', path: '/backoffice/settings', allowed: ADMIN, form: () => ({ ...SETTINGS_FORM }), expect: redirectsTo(/\?done=settingsSaved$/) },
  // The look (multipart with a logo in a browser; an accent alone may come url-encoded).
  { method: 'POST', path: '/backoffice/settings/branding', allowed: ADMIN, form: () => ({ accent: '#1f5eff' }), expect: redirectsTo(/\?done=brandSaved$/) },
  {
    method: 'POST',
    path: '/backoffice/settings/reminders',
    allowed: ADMIN,
    form: () => ({ enabled: '1', daysBefore: '3, 1', unopenedHours: '48', autoRenewDays: '0' }),
    expect: redirectsTo(/\?done=remindersSaved$/),
  },
  {
    method: 'POST',
    path: '/backoffice/settings/webhook-secret',
    allowed: ADMIN,
    expect: (r) => {
      assert.equal(r.status, 200);
      assert.match(textOf(r.html), /Your new webhook secret/);
    },
  },
  { method: 'GET', path: '/backoffice/users', allowed: ADMIN, expect: isPage(/Users and roles/) },
  {
    method: 'POST',
    path: '/backoffice/users',
    allowed: ADMIN,
    form: () => ({ email: `new${++userSeq}@verdi.example`, role: 'viewer' }),
    expect: (r) => {
      assert.equal(r.status, 201);
      assert.match(textOf(r.html), /Temporary password/);
    },
  },
  {
    method: 'POST',
    path: '/backoffice/users/:userId/role',
    allowed: ADMIN,
    params: freshUser,
    form: () => ({ role: 'accountant' }),
    expect: async (r, { params }) => {
      redirectsTo(/\?done=roleChanged$/)(r);
      assert.equal((await MerchantUser.findById(params['userId']).lean())!.role, 'accountant');
    },
  },
  {
    method: 'POST',
    path: '/backoffice/users/:userId/remove',
    allowed: ADMIN,
    params: freshUser,
    expect: async (r, { params }) => {
      redirectsTo(/\?done=userRemoved$/)(r);
      assert.equal(await MerchantUser.countDocuments({ _id: params['userId'] }), 0);
    },
  },
  { method: 'GET', path: '/backoffice/webhooks', allowed: ADMIN, expect: isPage(/Webhook log/) },
  {
    method: 'POST',
    path: '/backoffice/webhooks/:eventId/replay',
    allowed: ADMIN,
    params: deadDelivery,
    expect: async (r, { params }) => {
      redirectsTo(/\?done=replayed$/)(r);
      assert.equal((await WebhookDelivery.findById(params['eventId']).lean())!.status, 'pending');
    },
  },
  { method: 'GET', path: '/backoffice/api-keys', allowed: ADMIN, expect: isPage(/Server API keys/) },
  {
    method: 'POST',
    path: '/backoffice/api-keys',
    allowed: ADMIN,
    form: () => ({ label: 'matrix', readOnly: '1' }),
    expect: (r) => {
      assert.equal(r.status, 201);
      assert.match(r.html, /pm_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}/);
    },
  },
  {
    method: 'POST',
    path: '/backoffice/api-keys/:keyId/revoke',
    allowed: ADMIN,
    params: freshApiKey,
    expect: async (r, { params }) => {
      assert.equal(r.status, 200);
      assert.equal((await repos.apiKeys.byId(params['keyId']!))!.revoked, true);
    },
  },
  { method: 'GET', path: '/backoffice/export', allowed: ACCOUNTING, expect: isPage(/Export orders \(CSV\)/) },
  {
    method: 'GET',
    path: '/backoffice/export.csv',
    allowed: ACCOUNTING,
    query: '?from=2020-01-01&to=2099-12-31',
    expect: (r) => {
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/csv/);
    },
  },
  { method: 'GET', path: '/backoffice/password', allowed: ALL, expect: isPage(/Change your password/) },
  {
    method: 'POST',
    path: '/backoffice/password',
    allowed: ALL,
    // Allowed but refused on its merits (too short): proves the handler ran without changing anything.
    form: ({ password }) => ({ current: password, next: 'short', confirm: 'short' }),
    expect: (r) => {
      assert.equal(r.status, 422);
      assert.match(textOf(r.html), /at least 12 characters/);
    },
  },
  // '' keeps the merchant's language (the matrix's pages stay in English).
  { method: 'POST', path: '/backoffice/account/language', allowed: ALL, form: () => ({ language: '' }), expect: redirectsTo(/\?done=languageSaved$/) },
  { method: 'POST', path: '/backoffice/logout', allowed: ALL, expect: redirectsTo(/^\/backoffice\/login$/) },
];
const PUBLIC = ['GET /backoffice/login', 'POST /backoffice/login'];

describe('back office: roles on every route', function () {
  this.timeout(60_000);
  useTestDatabase();
  let app: BackofficeApp;
  let merchant: MerchantDoc;
  let other: MerchantDoc;
  const password = 'role test password';
  const clients = new Map<Role, BoClient>();
  let seq = 0;

  before(async () => {
    app = await startBackofficeApp();
    const merchants = createMerchantService({ repos, mailDomain: MAIL_DOMAIN });
    const m = await merchants.create({ name: 'Teatro Verdi', email: 'box@verdi.example' });
    const o = await merchants.create({ name: 'Other Shop', email: 'shop@other.example' });
    merchant = (await Merchant.findById(m.id).lean<MerchantDoc>())!;
    other = (await Merchant.findById(o.id).lean<MerchantDoc>())!;
    const hash = await hashPassword(password);
    for (const role of ROLES) {
      await MerchantUser.create({ merchantId: merchant._id, email: `${role}@verdi.example`, passwordHash: hash, role });
    }
  });
  after(() => app?.close());

  async function clientFor(role: Role): Promise<BoClient> {
    let c = clients.get(role);
    if (!c) {
      c = new BoClient(app.base);
      assert.equal((await c.login(`${role}@verdi.example`, password)).status, 303, role);
      clients.set(role, c);
    }
    return c;
  }

  async function openOrder(m: MerchantDoc = merchant): Promise<OrderDoc> {
    seq += 1;
    const r = await app.orders.create(m, { amountMinor: 4200 + seq, currency: 'EUR', reference: `R-${seq}`, customerName: 'Anna Rossi' }, { key: `t:${seq}` });
    return r.order;
  }

  async function orderFor(route: RouteCase): Promise<OrderDoc> {
    const order = await openOrder();
    if (route.order !== 'paid') return order;
    const paid = await app.checkout.pay({ order, merchant }, CARD, '127.0.0.9');
    assert.equal(paid.kind, 'paid');
    return (await Order.findById(order._id).lean<OrderDoc>())!;
  }

  function urlFor(route: RouteCase, orderId: string, params: Record<string, string>): string {
    let url = route.path.replace(':id', orderId);
    for (const [k, v] of Object.entries(params)) url = url.replace(`:${k}`, v);
    return url + (route.query ?? '');
  }

  /** Everything a denied request must leave as it was. */
  async function state(orderId: string) {
    const o = (await Order.findById(orderId).lean<OrderDoc>())!;
    const m = (await Merchant.findById(merchant._id).lean<MerchantDoc>())!;
    return {
      order: { status: o.status, expiresAt: o.expiresAt.getTime(), attempts: o.attempts.length },
      orders: await Order.countDocuments({ merchantId: merchant._id }),
      outbox: await Outbox.countDocuments({}),
      refunds: await Refund.countDocuments({}),
      users: (await MerchantUser.find({ merchantId: merchant._id }).sort({ email: 1 }).lean()).map((u) => `${u.email}:${u.role}`),
      merchant: { secret: m.webhookSecret, updatedAt: (m as { updatedAt?: Date }).updatedAt?.getTime() },
      deliveries: (await WebhookDelivery.find({ merchantId: merchant._id }).sort({ _id: 1 }).lean()).map((d) => `${d._id}:${d.status}`),
      apiKeys: (await repos.apiKeys.listByMerchant(merchant._id)).map((k) => `${k._id}:${k.revoked}`),
    };
  }

  it('the matrix lists every route the router has', () => {
    const registered = new Set<string>();
    for (const layer of app.router.stack) {
      for (const method of layer.methods.filter((x) => x !== 'HEAD')) registered.add(`${method} ${layer.path}`);
    }
    const listed = new Set([...MATRIX.map((c) => `${c.method} ${c.path}`), ...PUBLIC]);
    assert.deepEqual([...registered].sort(), [...listed].sort());
  });

  for (const route of MATRIX) {
    for (const role of ROLES) {
      const allowed = route.allowed.includes(role);
      it(`${route.method} ${route.path} as ${role}: ${allowed ? 'allowed' : 'denied (403)'}`, async () => {
        const c = await clientFor(role);
        const order = await orderFor(route);
        const params = (await route.params?.({ merchantId: merchant._id, orderId: order._id })) ?? {};
        const url = urlFor(route, order._id, params);
        const before = await state(order._id);
        const r = route.method === 'GET' ? await c.get(url) : await c.post(url, route.form?.({ password }) ?? {});
        if (allowed) {
          await route.expect(r, { orderId: order._id, params });
        } else {
          assert.equal(r.status, 403);
          assert.match(textOf(r.html), /Your role does not allow this/);
          // Denied means nothing happened.
          assert.deepEqual(await state(order._id), before);
        }
        if (route.path === '/backoffice/logout' && allowed) clients.delete(role);
      });
    }
    it(`${route.method} ${route.path} anonymously: sent to log in (303)`, async () => {
      const order = await orderFor(route);
      const params = (await route.params?.({ merchantId: merchant._id, orderId: order._id })) ?? {};
      const c = new BoClient(app.base);
      const url = urlFor(route, order._id, params);
      const before = await state(order._id);
      const r = route.method === 'GET' ? await c.get(url) : await c.post(url, { _csrf: 'x', ...(route.form?.({ password }) ?? {}) });
      assert.equal(r.status, 303);
      assert.match(r.location, /^\/backoffice\/login(\?next=|$)/);
      assert.deepEqual(await state(order._id), before);
    });
  }

  it('hides actions a role may not use', async () => {
    const order = await openOrder();
    const paid = await orderFor({ method: 'GET', path: '', allowed: [], order: 'paid', expect: () => {} });
    const expectations: Array<[Role, { cancel: boolean; export: boolean; create: boolean; operations: boolean; admin: boolean }]> = [
      ['viewer', { cancel: false, export: false, create: false, operations: false, admin: false }],
      ['operator', { cancel: true, export: false, create: true, operations: true, admin: false }],
      ['accountant', { cancel: false, export: true, create: false, operations: false, admin: false }],
      ['admin', { cancel: true, export: true, create: true, operations: true, admin: true }],
    ];
    for (const [role, shows] of expectations) {
      const html = (await (await clientFor(role)).get(`/backoffice/orders/${order._id}`)).html;
      assert.equal(html.includes('/cancel"'), shows.cancel, `${role} cancel`);
      assert.equal(html.includes('href="/backoffice/export"'), shows.export, `${role} export`);
      assert.equal(html.includes('href="/backoffice/orders/new"'), shows.create, `${role} create`);
      assert.equal(html.includes(`href="/backoffice/orders/${order._id}/moto"`), shows.operations, `${role} moto`);
      for (const nav of ['settings', 'users', 'webhooks']) assert.equal(html.includes(`href="/backoffice/${nav}"`), shows.admin, `${role} ${nav}`);
      const paidHtml = (await (await clientFor(role)).get(`/backoffice/orders/${paid._id}`)).html;
      assert.equal(paidHtml.includes('id="refund-form"'), shows.operations, `${role} refund`);
    }
  });

  describe('tenant isolation', () => {
    it("never shows, changes or exports another merchant's orders", async () => {
      const theirs = await openOrder(other);
      const mine = await openOrder();
      const admin = await clientFor('admin');
      assert.equal((await admin.get(`/backoffice/orders/${theirs._id}`)).status, 404);
      assert.equal((await admin.get(`/backoffice/orders/${theirs._id}/moto`)).status, 404);
      for (const action of ['cancel', 'resend', 'extend', 'refund', 'moto']) {
        const r = await admin.post(`/backoffice/orders/${theirs._id}/${action}`, { expires: '2099-01-01', amount: '1', ...CARD });
        assert.equal(r.status, 404, action);
      }
      const after = (await Order.findById(theirs._id).lean<OrderDoc>())!;
      assert.equal(after.status, 'pending');
      assert.equal(after.expiresAt.getTime(), theirs.expiresAt.getTime());
      assert.equal(await Outbox.countDocuments({ orderId: theirs._id, dedupeKey: /:resend:/ }), 0);

      const list = await admin.get(`/backoffice/orders?reference=R-`);
      assert.ok(list.html.includes(mine._id), 'own order listed');
      assert.ok(!list.html.includes(theirs._id), 'other merchant hidden');
      const byRef = await admin.get(`/backoffice/orders?reference=${encodeURIComponent(theirs.reference)}`);
      assert.ok(!byRef.html.includes(theirs._id));
      const csv = await fetch(`${app.base}/backoffice/export.csv?from=2020-01-01&to=2099-12-31`, {
        headers: { cookie: `pm_bo_session=${admin.cookies.get('pm_bo_session')}` },
      }).then((r) => r.text());
      assert.ok(csv.includes(mine._id));
      assert.ok(!csv.includes(theirs._id));
    });
  });
});
