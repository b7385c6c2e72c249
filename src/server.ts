// Composition root: config → database → services → SMTP door, HTTP app, outbox worker.
// `startPaymail` returns the bound ports and a graceful `stop` (used by main.ts and the e2e tests).
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Config } from './config.ts';
import { connectDatabase } from './db/connection.ts';
import { createHttpApp } from './http/app.ts';
import { devMailRouter } from './http/dev/dev-mail.routes.ts';
import { createViews } from './http/views.ts';
import { loadSmtpTls } from './inbound/tls.ts';
import { close as closeSmtp, createSubmissionServer, listen as listenSmtp } from './inbound/submission-server.ts';
import { createOutboxWorker } from './jobs/outbox-worker.ts';
import { type Logger } from './logger.ts';
import { createMailRenderer } from './mail/renderer.ts';
import { createMailTransport } from './mail/transport.ts';
import { createSandboxAcquirer } from './services/acquirer/sandbox-acquirer.ts';
import { createCheckoutService } from './services/checkout.service.ts';
import { createIntakeService } from './services/intake.service.ts';
import { loadLinkKeys } from './services/link-keys.ts';
import { createMerchantService } from './services/merchant.service.ts';
import { createOrderService } from './services/order.service.ts';

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url));

export interface RunningPaymail {
  ports: { http: number; submission: number };
  stop(): Promise<void>;
}

export async function startPaymail(config: Config, logger: Logger): Promise<RunningPaymail> {
  const db = await connectDatabase(config, { log: (line) => logger.info(line) });
  logger.info({ database: db.description }, 'database connected');
  const cleanups: Array<() => Promise<void>> = [() => db.close()];
  const stopAll = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => logger.error({ err }, 'shutdown step failed'));
  };
  try {
    const linkKeys = await loadLinkKeys(config);
    const merchants = createMerchantService({ mailDomain: config.mailDomain });
    const orders = createOrderService({
      publicUrl: config.publicUrl,
      mailDomain: config.mailDomain,
      maxLinkLifetimeDays: config.maxLinkLifetimeDays,
      linkKeys,
    });
    const intake = createIntakeService({
      orders,
      mailDomain: config.mailDomain,
      maxLinkLifetimeDays: config.maxLinkLifetimeDays,
      logger: logger.child({ component: 'intake' }),
    });
    cleanups.push(() => intake.close());

    // Outbound mail: MJML compiled once here, then a worker drains the durable outbox.
    const renderer = await createMailRenderer({ templatesDir: TEMPLATES_DIR, publicUrl: config.publicUrl });
    const transport = createMailTransport({ outboundSmtpUrl: config.outboundSmtpUrl, production: config.production });
    const worker = createOutboxWorker({
      renderer,
      transport,
      from: `paymail <no-reply@${config.mailDomain}>`,
      logger: logger.child({ component: 'outbox' }),
    });
    cleanups.push(async () => {
      await worker.stop();
      transport.close();
    });

    // HTTP: checkout (and /dev/mail when mail is captured in development).
    const views = createViews({ templatesDir: TEMPLATES_DIR });
    const checkout = createCheckoutService({
      acquirer: createSandboxAcquirer(),
      linkKeys,
      mailDomain: config.mailDomain,
      linkFor: (o) => orders.linkFor(o),
    });
    const extraRouters = !config.production && transport.mode === 'capture' ? [devMailRouter()] : [];
    const app = createHttpApp({ logger, views, checkout: { service: checkout }, extraRouters, production: config.production });
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

    // SMTP submission door (AUTH). The MX door comes with mail authentication (mailauth).
    const tls = await loadSmtpTls({ smtpTls: config.smtpTls, dataDir: config.dataDir, production: config.production, hostname: config.mailDomain });
    const submission = createSubmissionServer({
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

    // Work left over by a previous run (mail stored but not processed), then the outbox.
    const resumed = await intake.resumePending();
    if (resumed > 0) logger.info({ resumed }, 'resumed inbound messages left unprocessed by a previous run');
    intake.startSweep();
    const repairPayments = () =>
      checkout.repairInterrupted().then(
        (n) => n > 0 && logger.warn({ repaired: n }, 'finished payments interrupted by a crash'),
        (err: unknown) => logger.error({ err }, 'payment repair failed'),
      );
    await repairPayments();
    const repairTimer = setInterval(() => void repairPayments(), 60_000);
    repairTimer.unref();
    cleanups.push(async () => clearInterval(repairTimer));
    worker.start();

    const ports = { http: (httpServer.address() as AddressInfo).port, submission: submissionPort };
    logger.info(
      {
        ports,
        publicUrl: config.publicUrl,
        outbound: transport.mode === 'capture' ? `captured, see ${config.publicUrl}/dev/mail` : 'relayed to OUTBOUND_SMTP_URL',
      },
      'paymail ready',
    );
    return { ports, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
