// `npm run bench`: runs P3, P1, P2, P4, P5, P6 and P7 one after the other (each bounded in count and time,
// 127.0.0.1 only, one shared database server), prints every figure and writes bench/results.md.
// BENCH_ONLY=P1,P3 runs a subset. The intake robustness flood is separate: `npm run bench:intake`.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, fmt, printResult } from './lib.ts';
import { runP1 } from './p1-smtp-throughput.ts';
import { runP2 } from './p2-checkout-get.ts';
import { runP3 } from './p3-mail-render.ts';
import { runP4 } from './p4-checkout-under-ingest.ts';
import { runP5 } from './p5-recap.ts';
import { runP6 } from './p6-outbox-drain.ts';
import { runP7 } from './p7-paylink-latency.ts';
import { runRoundTrips } from './round-trips.ts';

const ALL: Array<[string, () => Promise<BenchResult>]> = [
  ['P3', runP3],
  ['P1', runP1],
  ['P2', runP2],
  ['P4', runP4],
  ['P5', runP5],
  ['P6', runP6],
  ['P7', runP7],
  ['RT', runRoundTrips],
];
const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim().toUpperCase());
const results: BenchResult[] = [];
const started = new Date();
for (const [id, run] of ALL) {
  if (only && !only.includes(id)) continue;
  console.error(`running ${id}…`);
  const r = await run();
  printResult(r);
  results.push(r);
}

// A partial run (BENCH_ONLY) keeps the rows and sections of the other ids from the last file.
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.md');
// Notes written by hand below this marker (analysis, before/after) survive a new run.
const MARK = '<!-- notes: kept across runs -->';
let old = '';
try {
  old = await (await import('node:fs/promises')).readFile(out, 'utf8');
} catch {
  /* first run */
}
const ran = new Set(results.map((r) => r.id));
const top = old.includes(MARK) ? old.slice(0, old.indexOf(MARK)) : old;
// Any id, also those measured by their own scripts and kept here by hand (P5+, RT).
const keptRows = only ? top.split('\n').filter((l) => { const id = /^\| ([A-Z][A-Z0-9+]*) \|/.exec(l)?.[1]; return id !== undefined && !ran.has(id); }) : [];
const keptSections = only
  ? [...top.matchAll(/^## ([A-Z][A-Z0-9+]*) —[\s\S]*?(?=^## |$(?![\s\S]))/gm)].filter((m) => !ran.has(m[1]!)).map((m) => m[0].trimEnd())
  : [];
const env = `node ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}`;
// A partial run adds to the previous header, which says where each kept row comes from.
const previousHeader = top.split('\n').find((l) => l.startsWith('Written by '));
const header =
  only && previousHeader
    ? `${previousHeader} ${[...ran].join(', ')} measured again on ${started.toISOString()} (\`BENCH_ONLY\`; ${env}): their rows and sections are from that run.`
    : `Written by \`npm run bench\` (bench/run-all.ts) on ${started.toISOString()}; ${env}.` +
      (only ? ` This run: ${[...ran].join(', ')} (BENCH_ONLY); the other rows and sections are kept from the previous run.` : '');
const md = [
  '# Benchmark results',
  '',
  header,
  'Every ratio is against a baseline measured in the same run, on the same machine (shared and noisy:',
  'compare ratios, not absolute figures). Server and baseline each run in their own child process',
  '(bench/bench-server.ts, logs at warn); the load generator runs in the bench process.',
  '',
  '| id | measure | value | target | | database |',
  '|---|---|---|---|---|---|',
  ...results.flatMap((r) => r.checks.map((c) => `| ${r.id} | ${c.name} | ${fmt(c.value)} | ${c.target} | ${c.ok ? 'met' : '**missed**'} | ${r.database} |`)),
  ...keptRows,
  '',
  ...results.flatMap((r) => [`## ${r.id} — ${r.title}`, '', `Database: ${r.database}. Run ${started.toISOString()}.`, '', ...r.lines.map((l) => (l.startsWith('|') ? l : `${l}\n`)), '']),
  ...keptSections.flatMap((sec) => [sec, '']),
].join('\n');
const notes = old.includes(MARK) ? old.slice(old.indexOf(MARK)) : '';
await writeFile(out, `${md}\n${notes || `${MARK}\n`}`);
console.error(`\nwrote ${out}`);
