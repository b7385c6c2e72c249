// /metrics' database figures when their queries fail: the failure is counted
// (paymail_metrics_query_failures_total) and logged, at most once a minute, instead of vanishing.
// The failure is real: mongoose talks to the test database through a TCP relay on 127.0.0.1 that
// is then told to cut every connection that sends a request.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import mongoose from 'mongoose';
import { createLogger } from '../../src/logger.ts';
import { invalidateMetricsCache, registry, setMetricsLogger } from '../../src/metrics.ts';
import { testDbUri } from '../helpers/db.ts';

/** A relay to `target`; once `cut` is set, a connection that sends anything is destroyed. */
async function relay(target: URL) {
  const state = { cut: false };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      if (state.cut) {
        client.destroy();
        upstream.destroy();
      } else upstream.write(chunk);
    });
    upstream.pipe(client);
    const drop = () => (client.destroy(), upstream.destroy());
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    state,
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('metrics: failed database queries', function () {
  this.timeout(60_000);
  const logged: Array<Record<string, unknown>> = [];
  let proxy: Awaited<ReturnType<typeof relay>>;

  before(async () => {
    const uri = new URL(testDbUri());
    proxy = await relay(uri);
    const viaRelay = new URL(uri);
    viaRelay.host = `127.0.0.1:${proxy.port}`;
    await mongoose.connect(viaRelay.toString(), { serverSelectionTimeoutMS: 1_500, heartbeatFrequencyMS: 60_000, autoIndex: false });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    setMetricsLogger(createLogger('info', sink));
  });
  after(async () => {
    await mongoose.disconnect().catch(() => {});
    await proxy.close();
  });

  it('counts every failed scrape query and logs it at most once a minute', async () => {
    invalidateMetricsCache();
    const healthy = await registry.metrics();
    assert.equal(sample(healthy, 'paymail_metrics_query_failures_total'), 0);
    assert.match(healthy, /paymail_orders\{status="pending"\} 0/);

    for (let i = 0; i < 2; i++) {
      proxy.state.cut = true;
      invalidateMetricsCache();
      const text = await registry.metrics();
      // The database figures are left out, the process figures still answer.
      assert.doesNotMatch(text, /paymail_orders\{/);
      assert.match(text, /paymail_process_cpu/);
      // Connected again before the next round, so its queries run (and fail) too.
      proxy.state.cut = false;
      await mongoose.connection.db!.command({ ping: 1 });
      assert.equal(mongoose.connection.readyState, 1);
    }
    const text = await registry.metrics();
    assert.equal(sample(text, 'paymail_metrics_query_failures_total'), 2);
    const warnings = logged.filter((l) => l.msg === 'metrics database query failed');
    assert.equal(warnings.length, 1, JSON.stringify(logged));
    assert.ok(warnings[0]!.err, 'the error is in the log line');
  });
});
