// Starts FerretDB (SQLite backend) as a child process for development and tests, and stops it.
// A small state file lets the CLI reuse the running server's database instead of starting a second.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedDb {
  uri: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  binary: string;
  /** Directory holding the SQLite files (created when missing). */
  dir: string;
  port?: number;
  log?: (line: string) => void;
}

interface StateFile {
  pid: number;
  ownerPid: number;
  port: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const stateFile = (dir: string) => path.join(dir, 'ferretdb.json');

/** A FerretDB started by another live paymail process for the same data directory, if any. */
export async function findRunning(dir: string): Promise<{ uri: string; port: number } | undefined> {
  const f = stateFile(dir);
  if (!existsSync(f)) return undefined;
  try {
    const s = JSON.parse(readFileSync(f, 'utf8')) as StateFile;
    if (alive(s.ownerPid) && alive(s.pid) && (await canConnect(s.port))) {
      return { uri: `mongodb://127.0.0.1:${s.port}/paymail`, port: s.port };
    }
    // Orphan left by a killed paymail: stop it so it does not hold the SQLite files.
    if (!alive(s.ownerPid) && alive(s.pid)) process.kill(s.pid, 'SIGTERM');
  } catch {
    /* unreadable state: start afresh */
  }
  return undefined;
}

export async function startEmbeddedFerretdb(opts: EmbeddedOptions): Promise<EmbeddedDb> {
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.dir);
  const sqliteDir = path.join(dir, 'sqlite');
  const stateDir = path.join(dir, 'ferretdb-state');
  await mkdir(sqliteDir, { recursive: true });
  await mkdir(stateDir, { recursive: true });
  const port = opts.port || (await freePort());
  const args = [
    '--handler=sqlite',
    // In-memory SQLite deadlocks FerretDB's transactions (seen with v1.24.0), so even tests use files.
    `--sqlite-url=file:${sqliteDir}/`,
    `--listen-addr=127.0.0.1:${port}`,
    `--state-dir=${stateDir}`,
    '--telemetry=disable',
    '--debug-addr=-',
    '--log-level=error',
  ];
  const child: ChildProcess = spawn(opts.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 20_000;
  while (!(await canConnect(port))) {
    if (exited) throw new Error(`embedded FerretDB exited at start: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('embedded FerretDB did not start listening within 20 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const state: StateFile = { pid: child.pid!, ownerPid: process.pid, port };
  await writeFile(stateFile(dir), JSON.stringify(state));
  log(`embedded FerretDB listening on 127.0.0.1:${port} (SQLite files in ${sqliteDir})`);
  // Best effort if the parent exits without calling stop() (e.g. process.exit in a CLI).
  const onExit = () => {
    if (!exited) child.kill('SIGTERM');
  };
  process.once('exit', onExit);
  return {
    uri: `mongodb://127.0.0.1:${port}/paymail`,
    port,
    async stop() {
      process.removeListener('exit', onExit);
      if (!exited) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
      await rm(stateFile(dir), { force: true });
    },
  };
}
