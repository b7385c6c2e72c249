// Runs the real paymail entry point (src/main.ts) as a child process, exactly as `npm start` does,
// and waits for its "ready" log line with the ports it bound.
import { appendFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface PaymailProcess {
  child: ChildProcess;
  ports: { http: number; submission: number; mx?: number };
  /** Every line the process wrote (JSON logs), for assertions such as "no card number logged". */
  output: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `entry`: a compiled main.js (`npm run build`) run by plain node instead of src/main.ts under tsx. */
export async function startPaymail(env: Record<string, string>, timeoutMs = 60_000, entry?: string): Promise<PaymailProcess> {
  const child = spawn(process.execPath, entry ? [entry] : ['--import', 'tsx', path.join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const ports = await new Promise<PaymailProcess['ports']>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`paymail not ready in ${timeoutMs} ms:\n${output.join('\n')}`)), timeoutMs);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        output.push(line);
        if (process.env.PAYMAIL_PROCESS_LOG) appendFileSync(process.env.PAYMAIL_PROCESS_LOG, `${line}\n`);
        try {
          const j = JSON.parse(line) as { msg?: string; ports?: PaymailProcess['ports'] };
          if (j.msg === 'paymail ready' && j.ports) {
            clearTimeout(timer);
            resolve(j.ports);
          }
        } catch {
          /* not JSON */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => output.push(...d.toString().split('\n').filter(Boolean)));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`paymail exited with ${code} before it was ready:\n${output.join('\n')}`));
    });
  });
  return {
    child,
    ports,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** Runs `paymail …` (bin/paymail.js) and returns its stdout, stderr and exit code. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/paymail.js'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
