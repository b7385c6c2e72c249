// The OpenAPI 3.1 document of the server API, served at /api/v1/openapi.json. Paths are written
// by each area next to its routes (payment-links.routes.ts, orders.routes.ts: `…Paths`), schemas
// come from the zod schemas registered in resources.ts and the areas (z.toJSONSchema, JSON
// Schema 2020-12 as OAS 3.1 uses). Adding an endpoint: its route and its path entry in the area's
// file, its schemas registered with `requestSchemas` / `responseSchemas`.
import { z } from 'zod';
import { requestSchemas, responseSchemas } from './resources.ts';

export type OpenApiOperation = Record<string, unknown>;
export type OpenApiPaths = Record<string, Record<string, OpenApiOperation>>;

/** A reference to a schema of components.schemas. */
export const schemaRef = (id: string) => ({ $ref: `#/components/schemas/${id}` });

/** A JSON response with schema `id`. */
export const jsonResponse = (id: string, description: string, headers?: Record<string, unknown>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: schemaRef(id) } },
});

/** A JSON request body with schema `id`. */
export const jsonRequest = (id: string) => ({ required: true, content: { 'application/json': { schema: schemaRef(id) } } });

/** The problem answers an operation can give, by status. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Problem${s}` }]));

/** The problems every authenticated operation can give (500: nothing of the cause is shown). */
export const COMMON_PROBLEMS = [401, 429, 500] as const;

export const idempotencyKeyParam = { $ref: '#/components/parameters/IdempotencyKey' };
/** The header of an answer replayed for an Idempotency-Key (for a write's success response). */
export const replayedHeader = { 'Idempotent-Replayed': { $ref: '#/components/headers/IdempotentReplayed' } };

const PROBLEM_STATUSES: Record<number, string> = {
  400: 'Bad request (invalid JSON, cursor or Idempotency-Key).',
  401: 'Missing, unknown or revoked API key (WWW-Authenticate: Bearer).',
  402: 'Payment declined (PAYMENT_DECLINED): `declineCode` says why.',
  403: 'Read-only API key on a write, or the merchant is suspended.',
  404: 'No such order (or route).',
  409: 'Conflict: the state of the order, a reference already used, an Idempotency-Key reused with another request or still in progress.',
  413: 'Body larger than 64 kB.',
  415: 'Body not application/json.',
  422: 'Validation failed: `errors` lists every problem.',
  429: 'Rate limit of the API key reached (Retry-After).',
  500: 'Server error: nothing is leaked; retry (with the same Idempotency-Key).',
};

/** Headers some problem answers carry. */
const PROBLEM_HEADERS: Record<number, Record<string, unknown>> = {
  401: { 'WWW-Authenticate': { description: 'Bearer realm="paymail", error="invalid_token"', schema: { type: 'string' } } },
  409: { 'Retry-After': { description: 'Seconds, for IDEMPOTENCY_IN_PROGRESS.', schema: { type: 'integer' } } },
  429: { 'Retry-After': { description: 'Seconds until the API key may send again.', schema: { type: 'integer' } } },
};

/** components.schemas: the registries as JSON Schema 2020-12, referencing each other by component id. */
function componentSchemas(): Record<string, unknown> {
  const uri = (id: string) => `#/components/schemas/${id}`;
  const out: Record<string, unknown> = {};
  for (const [registry, io] of [[requestSchemas, 'input'], [responseSchemas, 'output']] as const) {
    const { schemas } = z.toJSONSchema(registry, { target: 'draft-2020-12', io, uri, unrepresentable: 'any' });
    for (const [id, schema] of Object.entries(schemas)) {
      const { $schema: _s, $id: _i, ...rest } = schema as Record<string, unknown>;
      out[id] = rest;
    }
  }
  return out;
}

export function buildOpenApiDocument(opts: { publicUrl: string; version: string; paths: OpenApiPaths[] }): Record<string, unknown> {
  const paths: OpenApiPaths = {};
  for (const area of opts.paths) {
    for (const [path, ops] of Object.entries(area)) paths[path] = { ...paths[path], ...ops };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'paymail server API',
      version: opts.version,
      description:
        'Create pay-links, read, cancel and refund orders. Authenticate with `Authorization: Bearer <API key>` ' +
        '(created with `paymail apikey create` or in the back office). Money is in minor units. Errors are ' +
        'RFC 9457 problem details with a stable `code`. Writes accept an `Idempotency-Key` header (24 hours).',
    },
    servers: [{ url: `${opts.publicUrl}/api/v1` }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: pm_…' } },
      parameters: {
        IdempotencyKey: {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Up to 255 visible ASCII characters. The same key with the same request answers the stored result for 24 hours ' +
            '(Idempotent-Replayed: true); with another request, 409 IDEMPOTENCY_KEY_REUSED.',
          schema: { type: 'string', minLength: 1, maxLength: 255 },
        },
      },
      headers: {
        IdempotentReplayed: { description: 'true on an answer replayed for an Idempotency-Key.', schema: { type: 'string', enum: ['true'] } },
      },
      responses: Object.fromEntries(
        Object.entries(PROBLEM_STATUSES).map(([status, description]) => [
          `Problem${status}`,
          {
            description,
            ...(PROBLEM_HEADERS[Number(status)] ? { headers: PROBLEM_HEADERS[Number(status)] } : {}),
            content: { 'application/problem+json': { schema: schemaRef('Problem') } },
          },
        ]),
      ),
      schemas: componentSchemas(),
    },
  };
}
