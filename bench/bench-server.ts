// Server side of the P1–P4 benchmarks, one per child process (bench/lib.ts startServer):
//   paymail — the real startPaymail from the environment (as `npm start`, logs at LOG_LEVEL);
//   sink    — the P1 baseline: a bare smtp-server with the same STARTTLS and AUTH steps that
//             accepts any credentials and discards every message;
//   koa     — the P2 baseline: a bare Koa route doing one raw-driver findOne by _id on `orders`.
// Prints "BENCH_READY {ports}" once listening; SIGTERM stops it.
import { type AddressInfo } from 'node:net';
import Koa from 'koa';
import mongoose from 'mongoose';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../src/config.ts';
import { loadSmtpTls } from '../src/inbound/tls.ts';
import { createLogger } from '../src/logger.ts';
import { startPaymail } from '../src/server.ts';

const mode = process.argv[2];
let stop: () => Promise<void>;

if (mode === 'paymail') {
  // BENCH_MAX_MESSAGE_BYTES: a limit above MAX_MESSAGE_BYTES' configurable cap (50 MiB), should a bench need one.
  const loaded = loadConfig(process.env);
  const config = process.env.BENCH_MAX_MESSAGE_BYTES ? { ...loaded, maxMessageBytes: Number(process.env.BENCH_MAX_MESSAGE_BYTES) } : loaded;
  const app = await startPaymail(config, createLogger(config.logLevel));
  stop = app.stop;
  console.log(`BENCH_READY ${JSON.stringify(app.ports)}`);
} else if (mode === 'sink') {
  const tls = await loadSmtpTls({ smtpTls: undefined, dataDir: process.env.DATA_DIR!, production: false, hostname: 'sink.bench' });
  const server = new SMTPServer({
    key: tls.key,
    cert: tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    size: 64 * 1024 * 1024,
    disableReverseLookup: true,
    logger: false,
    onAuth: (_auth, _session, cb) => cb(null, { user: 'bench' }),
    onData(stream, _session, cb) {
      stream.on('data', () => {});
      stream.once('end', () => cb(null, '2.0.0 discarded'));
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stop = () => new Promise<void>((r) => server.close(() => r()));
  console.log(`BENCH_READY ${JSON.stringify({ submission: (server.server.address() as AddressInfo).port })}`);
} else if (mode === 'koa') {
  await mongoose.connect(process.env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  const orders = mongoose.connection.db!.collection('orders');
  const app = new Koa();
  app.use(async (ctx) => {
    const m = /^\/raw\/([^/]+)$/.exec(ctx.path);
    if (!m) return;
    // The same primary-key look-up the checkout makes (orders are `ord_<publicId>`): the baseline
    // is the fastest single read of that order, not a scan.
    const order = await orders.findOne({ _id: `ord_${m[1]}` as never });
    ctx.body = order ? { status: order.status, amountMinor: order.amountMinor } : { status: 'none' };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  stop = async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await mongoose.disconnect();
  };
  console.log(`BENCH_READY ${JSON.stringify({ http: (server.address() as AddressInfo).port })}`);
} else {
  throw new Error(`unknown mode ${mode}`);
}

process.once('SIGTERM', () => {
  void stop().finally(() => process.exit(0));
});
