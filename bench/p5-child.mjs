// P5's measured side, in a child process of its own (bench/p5-recap.ts starts it): plain Node on
// the production build (`npm run build` → dist/, what `node dist/main.js` runs), so the peak RSS
// is the recap's and the runtime's, not the TypeScript loader's (tsx adds ~33 MB to a process that
// loads the recap job). Prints one line `P5_RESULT <json>`: the measured work's time, the process's
// peak RSS (VmHWM) and the largest sampled RSS.
//   baseline — raw driver `orders.find(<the recap's day window>)` iterated to the end;
//   recap    — the recap job's real pass (createRecapJob().runOnce()).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import mongoose from 'mongoose';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');

/** The orders a recap of these day windows reads: created, paid, expired or attempted in them. */
export function dayWindowFilter(windows) {
  const start = new Date(Math.min(...windows.map((w) => w.start.getTime())));
  const end = new Date(Math.max(...windows.map((w) => w.end.getTime())));
  const range = { $gte: start, $lt: end };
  return { start, end, filter: { $or: [{ createdAt: range }, { 'payment.paidAt': range }, { expiredAt: range }, { 'attempts.at': range }] } };
}

function vmHwm() {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

async function child(mode) {
  await mongoose.connect(process.env.MONGODB_URI, { serverSelectionTimeoutMS: 10_000, autoIndex: false });
  let sampled = process.memoryUsage().rss;
  let atPeak = process.memoryUsage();
  const sample = () => {
    const u = process.memoryUsage();
    if (u.rss > sampled) [sampled, atPeak] = [u.rss, u];
  };
  const sampler = setInterval(sample, 10);
  let detail;
  let ms;
  let cpu0 = process.cpuUsage();
  if (mode === 'baseline') {
    // A file, not the environment: 10,000 merchants' windows (P5+) pass the 128 KiB a variable may hold (E2BIG).
    const w = JSON.parse(readFileSync(process.env.P5_WINDOWS_FILE, 'utf8'));
    const { filter } = dayWindowFilter(w.map((x) => ({ start: new Date(x.start), end: new Date(x.end) })));
    cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let docs = 0;
    for await (const _ of mongoose.connection.db.collection('orders').find(filter)) docs++;
    ms = performance.now() - t0;
    detail = { docs };
  } else {
    const load = (m) => import(pathToFileURL(path.join(DIST, m)).href);
    const [{ createRecapJob }, { createLogger }, { createRepositories }] = await Promise.all([load('jobs/recap.job.js'), load('logger.js'), load('db/repositories.js')]);
    const now = new Date(process.env.P5_NOW);
    const job = createRecapJob({ repos: createRepositories(), mailDomain: process.env.MAIL_DOMAIN, logger: createLogger('info'), now: () => now, owner: 'bench' });
    cpu0 = process.cpuUsage();
    const t0 = performance.now();
    detail = { ...(await job.runOnce()) };
    ms = performance.now() - t0;
  }
  clearInterval(sampler);
  sample();
  // This process's CPU over the measured work: the rest of the time is the database's (or waiting).
  const cpu = process.cpuUsage(cpu0);
  detail.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  detail.heapAtPeakMB = Math.round(atPeak.heapTotal / 1048576);
  detail.externalAtPeakMB = Math.round(atPeak.external / 1048576);
  console.log(`P5_RESULT ${JSON.stringify({ ms, hwm: vmHwm(), sampled, detail })}`);
  await mongoose.disconnect();
  // The job's modules may hold timers or listeners; the measurement is done.
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await child(process.argv[2] ?? '');
