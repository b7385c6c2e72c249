// Every back-office route with every role, and anonymously: allowed (the route's own answer),
// denied (403, nothing changed) or sent to the log-in page (303). The expected matrix is written
// out here from the product rules, independently of src/http/backoffice/permissions.ts, and the
// test fails if the router has a route this matrix does not list. Also: tenant isolation.
import assert from 'node:assert/strict';
import { ROLES, MerchantUser, type Role } from '../../src/db/models/merchant-user.model.ts';
import { Merchant, type MerchantDoc } from '../../src/db/models/merchant.model.ts';
import { Order, type OrderDoc } from '../../src/db/models/order.model.ts';
import { Outbox } from '../../src/db/models/outbox.model.ts';
import { hashPassword } from '../../src/domain/password.ts';
import { createMerchantService } from '../../src/services/merchant.service.ts';
import { useTestDatabase } from '../helpers/db.ts';
import { BoClient, MAIL_DOMAIN, startBackofficeApp, textOf, type BackofficeApp, type Reply } from './backoffice-client.ts';

const ALL: Role[] = ['viewer', 'operator', 'accountant', 'admin'];
const OPERATIONS: Role[] = ['operator', 'admin'];
const ACCOUNTING: Role[] = ['accountant', 'admin'];

interface RouteCase {
  method: 'GET' | 'POST';
  /** Router path; :id is replaced by a fresh open order of the merchant. */
  path: string;
  allowed: Role[];
  query?: string;
  form?: (ctx: { password: string }) => Record<string, string>;
  /** What an allowed request answers. */
  expect: (r: Reply, ctx: { orderId: string }) => void | Promise<void>;
}

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
    path: '/backoffice/orders/:id/extend',
    allowed: OPERATIONS,
    form: () => ({ expires: new Date(Date.now() + 20 * 86_400_000).toISOString().slice(0, 10) }),
    expect: redirectsTo(/\?done=extended$/),
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
    const merchants = createMerchantService({ mailDomain: MAIL_DOMAIN });
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
        const order = await openOrder();
        const url = route.path.replace(':id', order._id) + (route.query ?? '');
        const before = await Order.countDocuments({ merchantId: merchant._id });
        const outboxBefore = await Outbox.countDocuments({});
        const r = route.method === 'GET' ? await c.get(url) : await c.post(url, route.form?.({ password }) ?? {});
        if (allowed) {
          await route.expect(r, { orderId: order._id });
        } else {
          assert.equal(r.status, 403);
          assert.match(textOf(r.html), /Your role does not allow this/);
          // Denied means nothing happened.
          const after = (await Order.findById(order._id).lean<OrderDoc>())!;
          assert.equal(after.status, 'pending');
          assert.equal(after.expiresAt.getTime(), order.expiresAt.getTime());
          assert.equal(await Order.countDocuments({ merchantId: merchant._id }), before);
          assert.equal(await Outbox.countDocuments({}), outboxBefore);
        }
        if (route.path === '/backoffice/logout' && allowed) clients.delete(role);
      });
    }
    it(`${route.method} ${route.path} anonymously: sent to log in (303)`, async () => {
      const order = await openOrder();
      const c = new BoClient(app.base);
      const url = route.path.replace(':id', order._id) + (route.query ?? '');
      const r = route.method === 'GET' ? await c.get(url) : await c.post(url, { _csrf: 'x', ...(route.form?.({ password }) ?? {}) });
      assert.equal(r.status, 303);
      assert.match(r.location, /^\/backoffice\/login(\?next=|$)/);
      assert.equal((await Order.findById(order._id).lean<OrderDoc>())!.status, 'pending');
    });
  }

  it('hides actions a role may not use', async () => {
    const order = await openOrder();
    const expectations: Array<[Role, { cancel: boolean; export: boolean; create: boolean }]> = [
      ['viewer', { cancel: false, export: false, create: false }],
      ['operator', { cancel: true, export: false, create: true }],
      ['accountant', { cancel: false, export: true, create: false }],
      ['admin', { cancel: true, export: true, create: true }],
    ];
    for (const [role, shows] of expectations) {
      const html = (await (await clientFor(role)).get(`/backoffice/orders/${order._id}`)).html;
      assert.equal(html.includes('/cancel"'), shows.cancel, `${role} cancel`);
      assert.equal(html.includes('href="/backoffice/export"'), shows.export, `${role} export`);
      assert.equal(html.includes('href="/backoffice/orders/new"'), shows.create, `${role} create`);
    }
  });

  describe('tenant isolation', () => {
    it("never shows, changes or exports another merchant's orders", async () => {
      const theirs = await openOrder(other);
      const mine = await openOrder();
      const admin = await clientFor('admin');
      assert.equal((await admin.get(`/backoffice/orders/${theirs._id}`)).status, 404);
      for (const action of ['cancel', 'resend', 'extend']) {
        const r = await admin.post(`/backoffice/orders/${theirs._id}/${action}`, { expires: '2099-01-01' });
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
