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
import { setEngineGuarantees } from '../src/db/engine.ts';
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
  // BENCH_ENGINE_PATH=mongodb: follow MongoDB's guarantees on the engine at hand (bench/round-trips.ts).
  if (process.env.BENCH_ENGINE_PATH === 'mongodb') setEngineGuarantees({ name: 'mongodb', atomicConditionalUpdates: true });
  stop = app.stop;
  console.log(`BENCH_READY ${JSON.stringify(app.ports)}`);
} else if (mode === 'sink' || mode === 'durable-sink') {
  // 'durable-sink': each message is stored with one insert into MONGODB_URI's database before the
  // 250, the least a server that must not lose an accepted mail does (P1's baseline).
  const store = mode === 'durable-sink' ? await openSinkStore(process.env.MONGODB_URI!) : undefined;
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
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => store && chunks.push(c));
      stream.once('end', () => {
        if (!store) return cb(null, '2.0.0 discarded');
        store.insert(Buffer.concat(chunks)).then(
          () => cb(null, '2.0.0 stored'),
          (err: unknown) => cb(Object.assign(new Error('4.3.0 not stored'), { responseCode: 451, cause: err })),
        );
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stop = async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await store?.close();
  };
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

/** The durable sink's store: one insert per message (raw bytes, arrival time) into `sink_messages`. */
async function openSinkStore(uri: string) {
  await mongoose.connect(uri, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  const messages = mongoose.connection.db!.collection('sink_messages');
  let n = 0;
  return {
    insert: (raw: Buffer) => messages.insertOne({ _id: `${process.pid}-${n++}` as never, raw, at: new Date() }),
    close: () => mongoose.disconnect(),
  };
}

process.once('SIGTERM', () => {
  void stop().finally(() => process.exit(0));
});
