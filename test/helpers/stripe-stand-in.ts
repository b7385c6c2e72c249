// A small stand-in for Stripe's API on 127.0.0.1, answering with Stripe's documented objects:
// PaymentMethods, Customers, PaymentIntents (succeeded; requires_action with
// next_action.redirect_to_url; card errors as `{"error": {"type": "card_error", "code":
// "card_declined", "decline_code": …}}` with HTTP 402), cancels, refunds and detaches. Unlike
// stripe-mock it keeps state and decides by test card number (Stripe's own test numbers), so the
// outcome mapping and the whole 3-D Secure round trip can be exercised. Its "3-D Secure page"
// (the redirect URL) passes or fails the authentication and sends the browser to return_url with
// `payment_intent=…`, as Stripe's does. Fault modes: `drop` (the connection is cut) and `slow`.
import http from 'node:http';
import { type AddressInfo } from 'node:net';

export interface StandInRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  idempotencyKey?: string;
}

interface Intent {
  id: string;
  amount: number;
  currency: string;
  status: string;
  customer: string | null;
  payment_method: string;
  return_url?: string;
  setup_future_usage: string | null;
  metadata: Record<string, string>;
  last_payment_error: Record<string, unknown> | null;
}

/** Card number → what Stripe's test card does (https://docs.stripe.com/testing). */
const CARDS: Record<string, { decline?: string; code?: string; threeDs?: boolean }> = {
  '4000000000000002': { decline: 'generic_decline' },
  '4000000000009995': { decline: 'insufficient_funds' },
  '4000000000009987': { decline: 'lost_card' },
  '4000000000009979': { decline: 'stolen_card' },
  '4000000000006975': { decline: 'card_velocity_exceeded' },
  '4000000000000119': { code: 'processing_error' },
  '4000000000003220': { threeDs: true },
  '4000002760003184': { threeDs: true },
};

export interface StripeStandIn {
  url: string;
  requests: StandInRequest[];
  intents: Map<string, Intent>;
  /** `drop`: cut every connection; `slow`: answer after 3 s; undefined: normal. */
  fault: 'drop' | 'slow' | undefined;
  stop(): Promise<void>;
}

export async function startStripeStandIn(): Promise<StripeStandIn> {
  let seq = 0;
  const id = (prefix: string) => `${prefix}_standin${String(++seq).padStart(6, '0')}`;
  const methods = new Map<string, string>(); // pm id → card number
  const intents = new Map<string, Intent>();
  const requests: StandInRequest[] = [];
  const state: StripeStandIn = { url: '', requests, intents, fault: undefined, stop: async () => {} };

  const intentObject = (pi: Intent, base: string) => ({
    id: pi.id,
    object: 'payment_intent',
    amount: pi.amount,
    currency: pi.currency,
    status: pi.status,
    capture_method: 'automatic',
    client_secret: `${pi.id}_secret_standin`,
    customer: pi.customer,
    payment_method: pi.payment_method,
    setup_future_usage: pi.setup_future_usage,
    metadata: pi.metadata,
    livemode: false,
    last_payment_error: pi.last_payment_error,
    latest_charge: pi.status === 'succeeded' ? `ch_${pi.id.slice(3)}` : null,
    next_action:
      pi.status === 'requires_action'
        ? { type: 'redirect_to_url', redirect_to_url: { url: `${base}/3ds/${pi.id}`, return_url: pi.return_url ?? null } }
        : null,
  });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.fault === 'drop') return req.socket.destroy();
      const answer = () => handle(req, res, Buffer.concat(chunks).toString());
      if (state.fault === 'slow') setTimeout(answer, 3000).unref();
      else answer();
    });
  });

  function send(res: http.ServerResponse, status: number, body: unknown) {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${++seq}` });
    res.end(JSON.stringify(body));
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', state.url);
    const params = Object.fromEntries(new URLSearchParams(req.method === 'GET' ? url.search : body));
    const key = req.headers['idempotency-key'];
    requests.push({ method: req.method ?? '', path: url.pathname, params, ...(typeof key === 'string' ? { idempotencyKey: key } : {}) });
    const parts = url.pathname.split('/').filter(Boolean);

    // The "3-D Secure page": ?result=fail fails the authentication; else it passes. Then back to return_url.
    if (req.method === 'GET' && parts[0] === '3ds' && parts[1]) {
      const pi = intents.get(parts[1]);
      if (!pi || pi.status !== 'requires_action') return send(res, 404, { error: 'no such authentication' });
      if (url.searchParams.get('result') === 'fail') {
        pi.status = 'requires_payment_method';
        pi.last_payment_error = { type: 'card_error', code: 'payment_intent_authentication_failure', message: 'The provided PaymentMethod has failed authentication.' };
      } else pi.status = 'succeeded';
      const back = new URL(pi.return_url!);
      back.searchParams.set('payment_intent', pi.id);
      back.searchParams.set('payment_intent_client_secret', `${pi.id}_secret_standin`);
      back.searchParams.set('redirect_status', pi.status === 'succeeded' ? 'succeeded' : 'failed');
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (parts[0] !== 'v1') return send(res, 404, { error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } });
    const [, resource, rid, action] = parts;

    if (resource === 'payment_methods' && req.method === 'POST' && !rid) {
      const pm = id('pm');
      methods.set(pm, params['card[number]'] ?? '');
      return send(res, 200, { id: pm, object: 'payment_method', type: 'card', card: { brand: 'visa', last4: (params['card[number]'] ?? '').slice(-4) } });
    }
    if (resource === 'payment_methods' && action === 'detach') {
      return send(res, 200, { id: rid, object: 'payment_method', type: 'card', customer: null });
    }
    if (resource === 'customers' && req.method === 'POST') {
      return send(res, 200, { id: id('cus'), object: 'customer', email: params['email'] ?? null, metadata: {} });
    }
    if (resource === 'payment_intents' && req.method === 'POST' && !rid) {
      const pmId = params['payment_method'] ?? '';
      const card = CARDS[methods.get(pmId) ?? ''] ?? {};
      const pi: Intent = {
        id: id('pi'),
        amount: Number(params['amount']),
        currency: params['currency'] ?? 'eur',
        status: 'succeeded',
        customer: params['customer'] ?? null,
        payment_method: pmId,
        ...(params['return_url'] ? { return_url: params['return_url'] } : {}),
        setup_future_usage: params['setup_future_usage'] ?? null,
        metadata: Object.fromEntries(Object.entries(params).filter(([k]) => k.startsWith('metadata[')).map(([k, v]) => [k.slice(9, -1), v])),
        last_payment_error: null,
      };
      intents.set(pi.id, pi);
      if (card.decline || card.code) {
        const error = {
          type: 'card_error',
          code: card.code ?? 'card_declined',
          ...(card.decline ? { decline_code: card.decline } : {}),
          message: card.decline ? 'Your card was declined.' : 'An error occurred while processing your card. Try again in a little bit.',
          doc_url: 'https://stripe.com/docs/error-codes/card-declined',
        };
        pi.status = 'requires_payment_method';
        pi.last_payment_error = error;
        return send(res, 402, { error: { ...error, payment_intent: intentObject(pi, state.url) } });
      }
      if (card.threeDs && params['off_session'] !== 'true') pi.status = 'requires_action';
      else if (card.threeDs) {
        const error = { type: 'card_error', code: 'authentication_required', decline_code: 'authentication_required', message: 'Your card was declined. This transaction requires authentication.' };
        pi.status = 'requires_payment_method';
        pi.last_payment_error = error;
        return send(res, 402, { error: { ...error, payment_intent: intentObject(pi, state.url) } });
      }
      return send(res, 200, intentObject(pi, state.url));
    }
    if (resource === 'payment_intents' && rid) {
      const pi = intents.get(rid);
      if (!pi) return send(res, 404, { error: { type: 'invalid_request_error', code: 'resource_missing', message: `No such payment_intent: '${rid}'` } });
      if (action === 'cancel') {
        if (pi.status === 'succeeded') return send(res, 400, { error: { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message: 'You cannot cancel this PaymentIntent because it has a status of succeeded.' } });
        pi.status = 'canceled';
      }
      return send(res, 200, intentObject(pi, state.url));
    }
    if (resource === 'refunds' && req.method === 'POST') {
      const pi = intents.get(params['payment_intent'] ?? '');
      if (!pi || pi.status !== 'succeeded') return send(res, 400, { error: { type: 'invalid_request_error', code: 'charge_not_refundable', message: 'This PaymentIntent has no successful charge to refund.' } });
      return send(res, 200, { id: id('re'), object: 'refund', amount: Number(params['amount'] ?? pi.amount), currency: pi.currency, payment_intent: pi.id, status: 'succeeded' });
    }
    send(res, 404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${url.pathname})` } });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}
