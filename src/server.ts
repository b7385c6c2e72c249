// Over 300 lines: the composition root wires every service, door, route and job in one place, in start-up order.
// Composition root: config → database → services → SMTP door, HTTP app, outbox worker.
// `startPaymail` returns the bound ports and a graceful `stop` (used by main.ts and the e2e tests).
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { type Config } from './config.ts';
import { followReachability } from './db/reachability.ts';
import { connectDatabase } from './db/connection.ts';
import { createRepositories } from './db/repositories.ts';
import { createHttpApp } from './http/app.ts';
import { createApiRouter } from './http/api/api.routes.ts';
import { createBackofficeRouter } from './http/backoffice/backoffice.routes.ts';
import { createBackofficeViews } from './http/backoffice/backoffice.views.ts';
import { devMailRouter } from './http/dev/dev-mail.routes.ts';
import { createProofRouter } from './http/proof/proof.routes.ts';
import { createRenewalRouter } from './http/checkout/renewal.routes.ts';
import { remindersOffUrl } from './domain/reminder-link.ts';
import { createRenewalService } from './services/renewal.service.ts';
import { createBrandRouter } from './http/brand/brand.routes.ts';
import { createOpsRouter } from './http/ops.routes.ts';
import { deriveCsrfKey } from './http/middleware/csrf.ts';
import { createViews } from './http/views.ts';
import { loadSmtpTls } from './inbound/tls.ts';
import { createDnsResolver, createMailAuthenticator } from './inbound/mail-auth.ts';
import { createMxServer } from './inbound/mx-server.ts';
import { close as closeSmtp, listen as listenSmtp } from './inbound/smtp-common.ts';
import { createSubmissionServer } from './inbound/submission-server.ts';
import { createExpiryJob } from './jobs/expiry.job.ts';
import { createPlanJob } from './jobs/plan.job.ts';
import { createPlanService } from './services/plan.service.ts';
import { createRecapJob } from './jobs/recap.job.ts';
import { createRetentionJob } from './jobs/retention.job.ts';
import { createOutboxWorker } from './jobs/outbox-worker.ts';
import { createWebhookWorker } from './jobs/webhook-worker.ts';
import { type Logger } from './logger.ts';
import { TEMPLATES_DIR } from './paths.ts';
import { setMetricsLogger } from './metrics.ts';
import { createMailRenderer } from './mail/renderer.ts';
import { createMailTransport } from './mail/transport.ts';
import { dkimTxtRecord, loadDkimSigning } from './mail/dkim.ts';
import { createParsePool, type ParsePool } from './mail/parse-pool.ts';
import { createSandboxAcquirer } from './services/acquirer/sandbox-acquirer.ts';
import { createAcquirerSettings } from './services/acquirer/acquirer-settings.ts';
import { createMerchantAcquirers } from './services/acquirer/merchant-acquirers.ts';
import { createStripeWebhooks } from './services/acquirer/stripe-webhooks.ts';
import { createStripeWebhookRouter } from './http/webhooks/stripe.routes.ts';
import { loadSecretsKey } from './services/secrets-key.ts';
import { createApiKeyService } from './services/api-key.service.ts';
import { createBackofficeAuthService } from './services/backoffice-auth.service.ts';
import { createCheckoutService } from './services/checkout.service.ts';
import { createEventsService } from './services/events.service.ts';
import { createMerchantAdminService } from './services/merchant-admin.service.ts';
import { createRefundService } from './services/refund.service.ts';
import { type FaultHook } from './services/order-transitions.ts';
import { createReceiptProofs } from './services/receipt-proof.service.ts';
import { loadReceiptKeys } from './services/signing-keys.ts';
import { createIntakeService } from './services/intake.service.ts';
import { createBounceService } from './services/bounce.service.ts';
import { createVerp, deriveVerpKey } from './domain/verp.ts';
import { loadLinkKeys } from './services/link-keys.ts';
import { createMerchantService } from './services/merchant.service.ts';
import { createOrderAdminService } from './services/order-admin.service.ts';
import { createOrderService } from './services/order.service.ts';
import { createReceiptDocuments } from './services/receipt-document.service.ts';
import { createBrandingService } from './services/branding.service.ts';
import { createSealedRequestService } from './services/sealed-request.service.ts';
import { createSavedCardChargeService } from './services/saved-card-charge.service.ts';
import { createSavedCardRemoval } from './services/saved-card-removal.service.ts';
import { createCardRemovalRouter } from './http/checkout/card-removal.routes.ts';
import { cardRemovalUrl } from './domain/card-removal.ts';

export { TEMPLATES_DIR };
/**
 * Unfinished transitions older than this are finished at start-up. Not 0: another instance may be
 * in the middle of one (finishing it twice would still be harmless — every step is idempotent).
 */
const STARTUP_REPAIR_AFTER_MS = 5_000;

export interface RunningPaymail {
  ports: { http: number; submission: number; mx: number };
  /** The MIME parse pool (undefined when parsing on the main thread), for its stats. */
  parsePool?: ParsePool | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** false parses inbound MIME on the main thread: only the robustness benchmark's baseline wants that. */
  parseInWorkers?: boolean;
}

export async function startPaymail(config: Config, logger: Logger, opts: StartOptions = {}): Promise<RunningPaymail> {
  const db = await connectDatabase(config, { log: (line) => logger.info(line) });
  logger.info({ database: db.description, engine: db.engine }, 'database connected');
  // The SMTP doors answer 451 at once while the driver knows no reachable server.
  followReachability(db.connection);
  const cleanups: Array<() => Promise<void>> = [() => db.close()];
  const stopAll = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
  };
  try {
    // The storage seam every service, job, door and route is given (src/db/repositories.ts).
    const repos = createRepositories();
    const linkKeys = await loadLinkKeys(config);
    // Ed25519 key of the signed payment proofs, and the webhook events queue.
    const receiptKeys = await loadReceiptKeys(config);
    const proofs = createReceiptProofs({ keys: receiptKeys, publicUrl: config.publicUrl });
    const events = createEventsService({ repos });
    const merchants = createMerchantService({ repos, mailDomain: config.mailDomain });
    const orders = createOrderService({ repos,
      publicUrl: config.publicUrl,
      mailDomain: config.mailDomain,
      maxLinkLifetimeDays: config.maxLinkLifetimeDays,
      linkKeys,
    });
    // MIME parsing in worker threads, so a hostile or huge mail cannot stall the doors; closed
    // after intake (cleanups run in reverse), which waits for the messages in flight.
    const parsePool = opts.parseInWorkers === false ? undefined : createParsePool({ logger: logger.child({ component: 'parse-pool' }) });
    if (parsePool) cleanups.push(() => parsePool.close());
    // Per-mail return paths (VERP, issue 13 part 8): every link key verifies, the first one signs.
    const verp = createVerp(linkKeys.map((k) => deriveVerpKey(k.secret)), config.mailDomain);
    const bounces = createBounceService({
      repos,
      mailDomain: config.mailDomain,
      events,
      logger: logger.child({ component: 'bounces' }),
      ...(parsePool ? { parseMail: (raw: Buffer) => parsePool.parse(raw) } : {}),
    });
    const intake = createIntakeService({ repos,
      bounces,
      orders,
      mailDomain: config.mailDomain,
      maxLinkLifetimeDays: config.maxLinkLifetimeDays,
      logger: logger.child({ component: 'intake' }),
      events,
      // CANCEL <ref> REFUND: the refund service is made below (it needs the acquirers); called only once mail flows.
      refunds: { refundAll: (...args) => refunds.refundAll(...args) },
      ...(parsePool ? { parseMail: (raw: Buffer) => parsePool.parse(raw) } : {}),
      concurrency: config.intakeConcurrency,
    });
    cleanups.push(() => intake.close());

    // Outbound mail: MJML compiled once here, then a worker drains the durable outbox.
    // The merchant's look: settings in the back office, its logo and theme served under /brand, the logo in PDF receipts.
    const branding = createBrandingService({ repos });
    const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: config.publicUrl, logos: (p) => branding.logoByPath(p) });
    // DKIM_* set: every mail is signed here for MAIL_DOMAIN (else the relay may sign; docs/operations.md).
    const dkim = await loadDkimSigning(config);
    if (dkim) logger.info({ domain: dkim.domainName, selector: dkim.keySelector, publish: dkimTxtRecord(dkim.privateKey) }, 'outgoing mail is DKIM-signed');
    const transport = createMailTransport({ outboundSmtpUrl: config.outboundSmtpUrl, production: config.production, dkim, maxConnections: config.outboundSmtpMaxConnections });
    const worker = createOutboxWorker({ repos,
      renderer,
      transport,
      from: `paymail <no-reply@${config.mailDomain}>`,
      returnPath: verp.returnPath,
      logger: logger.child({ component: 'outbox' }),
      concurrency: config.outboxConcurrency,
    });
    cleanups.push(async () => {
      await worker.stop();
      transport.close();
    });

    // HTTP: checkout (and /dev/mail when mail is captured in development).
    // 'proof': the signed payment proof on the receipt page.
    const views = createViews({ templatesDir: TEMPLATES_DIR, namespaces: ['checkout', 'proof'] });
    // The sandbox keeps saved cards in its own stored vault (issue 12 part 3), as a bank's would.
    const acquirer = createSandboxAcquirer({ vault: repos.cardVault });
    // Per-merchant acquirers (README "Acquirers"): the sandbox, or Stripe with the merchant's own
    // secret key, stored encrypted under SECRETS_KEY and decrypted only in memory.
    const acquirerSettings = createAcquirerSettings({ repos, secretsKey: await loadSecretsKey(config) });
    const acquirers = createMerchantAcquirers({
      sandbox: acquirer,
      settings: acquirerSettings,
      onStripeResponse: (merchantId, e) => logger.debug({ merchantId, stripe: e }, 'stripe answered'),
      onUnusable: (merchantId, reason) => logger.error({ merchantId, reason }, 'the merchant\'s Stripe key cannot be used: enter it again (paymail merchant set-acquirer, or the back office)'),
    });
    // FAULT_POINT (tests only): die like a crash at one step boundary of a state transition.
    const faults: FaultHook | undefined = config.faultPoint
      ? (point) => {
          if (point !== config.faultPoint) return;
          logger.warn({ point }, 'FAULT_POINT reached: killing the process');
          process.kill(process.pid, 'SIGKILL');
        }
      : undefined;
    const checkout = createCheckoutService({ repos,
      acquirer,
      acquirers,
      linkKeys,
      mailDomain: config.mailDomain,
      linkFor: (o) => orders.linkFor(o),
      events,
      proofs,
      // The link in a receipt that removes the saved card the payment used or saved.
      cardRemovalUrl: (o) => cardRemovalUrl(config.publicUrl, linkKeys, o),
      ...(faults ? { faults } : {}),
    });
    // Issue 13 part 4: the customer's request for a new link, and renewals (back office, EXTEND, automatic).
    const renewals = createRenewalService({ repos, mailDomain: config.mailDomain, publicUrl: config.publicUrl, maxLinkLifetimeDays: config.maxLinkLifetimeDays, linkFor: (o) => orders.linkFor(o), events });
    // The next part of an order paid in parts: on its date (plan job), or when the merchant asks.
    const plans = createPlanService({ repos, payLinks: orders, maxLinkLifetimeDays: config.maxLinkLifetimeDays, ...(faults ? { faults } : {}) });
    const refunds = createRefundService({ repos, acquirer, acquirers, events, ...(faults ? { faults } : {}) });
    // Saved cards (issue 12 part 3): merchant-initiated charges (back office, API) and the receipts' removal link.
    const savedCardCharges = createSavedCardChargeService({ repos, orders, checkout, ...(faults ? { faults } : {}) });
    const cardRemoval = createSavedCardRemoval({ repos, linkKeys, vaultOf: checkout.savedCardVault });
    // The PDF receipt again for the checkout's receipt page and the back office (never stored).
    const receipts = createReceiptDocuments({ renderer, proofs });
    // Merchant back office under /backoffice: sessions live in the database, so instances share them.
    const orderAdmin = createOrderAdminService({ repos, orders, maxLinkLifetimeDays: config.maxLinkLifetimeDays, events, refunds, ...(faults ? { faults } : {}) });
    const apiKeys = createApiKeyService({ repos });
    const backoffice = createBackofficeRouter({ repos,
      auth: createBackofficeAuthService({ repos }),
      orderAdmin,
      refunds,
      merchantAdmin: createMerchantAdminService({ repos, maxLinkLifetimeDays: config.maxLinkLifetimeDays, webhookTargets: { allowPrivate: config.webhookAllowPrivate } }),
      checkout,
      savedCardCharges,
      receipts,
      branding,
      renewals,
      plans,
      views: createBackofficeViews(TEMPLATES_DIR),
      acquirerSettings,
      csrfKey: deriveCsrfKey(linkKeys[0]!.secret),
      production: config.production,
      maxLinkLifetimeDays: config.maxLinkLifetimeDays,
    });
    // /readyz and /metrics (src/http/ops.routes.ts; /healthz is in app.ts).
    setMetricsLogger(logger.child({ component: 'metrics' }));
    const ops = createOpsRouter({ repos, outboxHealthy: () => worker.healthy() });
    // The server API under /api/v1 (src/http/api/): the same order, cancel and refund services.
    const api = createApiRouter({ repos, apiKeys, orders, orderAdmin, refunds, savedCardCharges, plans, publicUrl: config.publicUrl, maxLinkLifetimeDays: config.maxLinkLifetimeDays, rateLimit: config.apiRateLimit });
    const extraRouters = [ops, api, backoffice, createCardRemovalRouter({ removal: cardRemoval, csrfKey: deriveCsrfKey(linkKeys[0]!.secret), templatesDir: TEMPLATES_DIR }), createBrandRouter({ branding }), createProofRouter({ keys: receiptKeys, proofs, templatesDir: TEMPLATES_DIR }), ...(!config.production && transport.mode === 'capture' ? [devMailRouter({ repos })] : [])];
    // Stripe's webhooks (POST /webhooks/stripe/<merchant id>): late outcomes of 3-D Secure payments.
    const stripeWebhooks = createStripeWebhooks({ repos, settings: acquirerSettings, checkout, acquirers, logger: logger.child({ component: 'stripe-webhooks' }) });
    extraRouters.push(createStripeWebhookRouter({ webhooks: stripeWebhooks }));
    // Merchant websites: sealed requests to /pay/sealed and the buyer's sealed return.
    const sealed = createSealedRequestService({ repos, orders });
    extraRouters.push(createRenewalRouter({ repos, checkout, renewals, views, csrfKey: deriveCsrfKey(linkKeys[0]!.secret), linkKeys }));
    const app = createHttpApp({ logger, views, checkout: { service: checkout, csrfKey: deriveCsrfKey(linkKeys[0]!.secret), sealed, receipts, askNewLink: true }, extraRouters, production: config.production, proxy: config.trustProxy });
    const httpServer = http.createServer(app.callback());
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.httpPort, () => resolve());
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          httpServer.close(() => resolve());
          httpServer.closeIdleConnections();
        }),
    );

    // SMTP doors: submission (AUTH) and MX (mail authentication with mailauth), same TLS material.
    const tls = await loadSmtpTls({ smtpTls: config.smtpTls, dataDir: config.dataDir, production: config.production, hostname: config.mailDomain });
    const submission = createSubmissionServer({ repos,
      merchants,
      intake,
      mailDomain: config.mailDomain,
      maxMessageBytes: config.maxMessageBytes,
      tls,
      production: config.production,
      logger: logger.child({ component: 'smtp', door: 'submission' }),
    });
    const submissionPort = await listenSmtp(submission, config.smtpSubmissionPort, '0.0.0.0');
    // Closed first on shutdown: no new mail is accepted while the rest finishes.
    cleanups.push(() => closeSmtp(submission));
    const mx = createMxServer({ repos,
      intake,
      authenticator: createMailAuthenticator({ mta: config.mailDomain, resolver: createDnsResolver({ servers: config.dnsServers }) }),
      findMerchantByAlias: repos.merchants.findByAlias,
      mailDomain: config.mailDomain,
      maxMessageBytes: config.maxMessageBytes,
      tls,
      verp,
      logger: logger.child({ component: 'smtp', door: 'mx' }),
    });
    const mxPort = await listenSmtp(mx, config.smtpMxPort, '0.0.0.0');
    // Pushed last, so closed first: the door strangers knock on stops before anything else.
    cleanups.push(() => closeSmtp(mx));

    // Inbound messages on the work runner: each stored message at once (the door wakes it), work a
    // previous run left over, retries after their back-off and lapsed leases on its poll.
    intake.start();
    // Transitions (payments, 3-D Secure, expiries, cancellations, refunds) a crash or a failed
    // write left unfinished: finished with each side effect once (src/services/order-transitions.ts).
    // At start-up anything a few seconds old (the previous run is gone); then every minute.
    const repairPayments = (olderThanMs = 60_000) =>
      Promise.all([checkout.repairInterrupted(olderThanMs), refunds.repairInterrupted(olderThanMs), savedCardCharges.repairInterrupted(olderThanMs)]).then(
        ([closed, refunded, charged]) => closed + refunded + charged > 0 && logger.warn({ closed, refunded, charged }, 'finished transitions interrupted by a crash'),
        (err: unknown) => logger.error({ err }, 'transition repair failed'),
      );
    await repairPayments(STARTUP_REPAIR_AFTER_MS);
    // Rate-limit records, challenges and sealed-request nonces past their time are deleted by query (no TTL index).
    const sweepCheckout = () =>
      Promise.all([checkout.sweep(), sealed.sweep()]).catch((err: unknown) => logger.error({ err }, 'checkout sweep failed'));
    const repairTimer = setInterval(() => void repairPayments().then(sweepCheckout), 60_000);
    repairTimer.unref();
    // Renewals a crash left half done (src/services/renewal.service.ts): finished within a minute or two.
    const renewalTimer = setInterval(() => void renewals.repair().catch((err: unknown) => logger.error({ err }, 'renewal repair failed')), 60_000);
    renewalTimer.unref();
    cleanups.push(async () => clearInterval(renewalTimer));
    cleanups.push(async () => clearInterval(repairTimer));
    worker.start();
    // Webhooks and expiry/reminders; stopped before the outbox worker (cleanups run in reverse).
    const webhooks = createWebhookWorker({ repos, logger: logger.child({ component: 'webhooks' }), allowPrivateTargets: config.webhookAllowPrivate, concurrency: config.webhookConcurrency });
    webhooks.start();
    cleanups.push(() => webhooks.stop());
    const expiry = createExpiryJob({ repos,
      events,
      mailDomain: config.mailDomain,
      linkFor: (o) => orders.linkFor(o),
      remindersOffFor: (o) => remindersOffUrl(config.publicUrl, linkKeys, o.publicId),
      logger,
      ...(faults ? { faults } : {}),
    });
    expiry.start();
    cleanups.push(() => expiry.stop());
    // Orders paid in parts: the balance or next instalment goes out on its date (issue 13 part 1).
    const planJob = createPlanJob({ plans, logger });
    planJob.start();
    cleanups.push(() => planJob.stop());
    // Daily recaps (claims make it once per merchant and day across instances and restarts).
    const recapJob = createRecapJob({ repos, mailDomain: config.mailDomain, logger });
    recapJob.start();
    cleanups.push(() => recapJob.stop());
    // Retention: old claims, sessions, login attempts, rate-limit records, sent mails' bodies.
    const retentionJob = createRetentionJob({ repos, ages: config.retention, logger });
    retentionJob.start();
    cleanups.push(() => retentionJob.stop());

    const ports = { http: (httpServer.address() as AddressInfo).port, submission: submissionPort, mx: mxPort };
    logger.info(
      {
        ports,
        publicUrl: config.publicUrl,
        outbound: transport.mode === 'capture' ? `captured, see ${config.publicUrl}/dev/mail` : 'relayed to OUTBOUND_SMTP_URL',
      },
      'paymail ready',
    );
    return { ports, parsePool, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
