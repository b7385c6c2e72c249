// `npm run bench`: runs P3, P1, P2, P4 and P5 one after the other (each bounded in count and time,
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

const ALL: Array<[string, () => Promise<BenchResult>]> = [
  ['P3', runP3],
  ['P1', runP1],
  ['P2', runP2],
  ['P4', runP4],
  ['P5', runP5],
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

const env = `node ${process.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}`;
const md = [
  '# Benchmark results',
  '',
  `Written by \`npm run bench\` (bench/run-all.ts) on ${started.toISOString()}; ${env}.`,
  'Every ratio is against a baseline measured in the same run, on the same machine (shared and noisy:',
  'compare ratios, not absolute figures). Server and baseline each run in their own child process',
  '(bench/bench-server.ts, logs at warn); the load generator runs in the bench process.',
  '',
  '| id | measure | value | target | | database |',
  '|---|---|---|---|---|---|',
  ...results.flatMap((r) => r.checks.map((c) => `| ${r.id} | ${c.name} | ${fmt(c.value)} | ${c.target} | ${c.ok ? 'met' : '**missed**'} | ${r.database} |`)),
  '',
  ...results.flatMap((r) => [`## ${r.id} — ${r.title}`, '', `Database: ${r.database}.`, '', ...r.lines.map((l) => (l.startsWith('|') ? l : `${l}\n`)), '']),
].join('\n');
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.md');
// Notes written by hand below this marker (analysis, before/after) survive a new run.
const MARK = '<!-- notes: kept across runs -->';
let notes = '';
try {
  const old = await (await import('node:fs/promises')).readFile(out, 'utf8');
  const i = old.indexOf(MARK);
  if (i >= 0) notes = old.slice(i);
} catch {
  /* first run */
}
await writeFile(out, `${md}\n${notes || `${MARK}\n`}`);
console.error(`\nwrote ${out}`);
