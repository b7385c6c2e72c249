// paymail as a child process (the real composition root, src/server.ts) with an event-loop probe:
// forked by flood.ts with an IPC channel, it reports its ports when ready and, on request, the
// longest event-loop stall it has seen (perf_hooks.monitorEventLoopDelay) and the parse pool's
// stats. PAYMAIL_PARSE=main parses MIME on the main thread (the benchmark's baseline).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startPaymail } from '../../src/server.ts';

export type ProbeRequest = { type: 'stats'; reset?: boolean } | { type: 'stop' };
export type ProbeReply =
  | { type: 'ready'; ports: { http: number; submission: number } }
  | { type: 'stats'; maxStallMs: number; p99StallMs: number; meanStallMs: number; rssMb: number; pool: unknown }
  | { type: 'stopped' };

const send = (m: ProbeReply) => process.send!(m);
const config = loadConfig();
const running = await startPaymail(config, createLogger(config.logLevel), { parseInWorkers: process.env.PAYMAIL_PARSE !== 'main' });
// Resolution 10 ms: a stall shorter than that is noise for this purpose; started after start-up.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
send({ type: 'ready', ports: running.ports });

process.on('message', (m: ProbeRequest) => {
  if (m.type === 'stats') {
    send({
      type: 'stats',
      maxStallMs: loop.max / 1e6,
      p99StallMs: loop.percentile(99) / 1e6,
      meanStallMs: loop.mean / 1e6,
      rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      pool: running.parsePool?.stats() ?? null,
    });
    if (m.reset) loop.reset();
  } else if (m.type === 'stop') {
    loop.disable();
    void running.stop().finally(() => {
      send({ type: 'stopped' });
      process.disconnect();
      process.exit(0);
    });
  }
});
