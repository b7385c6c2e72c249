// stripe-mock (Stripe's official mock server, built by scripts/build-stripe-mock.ts) started on
// 127.0.0.1 for a test file. It validates every request against Stripe's OpenAPI specification and
// answers fixtures; it keeps no state. In CI (CI=true) a missing binary is a failure; on a machine
// without Go the tests using it are pending, like the browser tests without Chromium.
import { spawn, type ChildProcess } from 'node:child_process';
import { ensureStripeMock } from '../../scripts/build-stripe-mock.ts';

export interface StripeMock {
  /** http://127.0.0.1:PORT — the `--api-base` / apiBase of a merchant on it. */
  url: string;
  stop(): Promise<void>;
}

/** The binary, or undefined when it cannot be had outside CI (the caller skips). */
export async function stripeMockBinary(): Promise<string | undefined> {
  try {
    return await ensureStripeMock();
  } catch (e) {
    if (process.env.CI) throw e;
    return undefined;
  }
}

/** Starts stripe-mock on 127.0.0.1 with a port the system picks (HTTP, and HTTPS on loopback too: it would otherwise bind :12112 on every address). */
export async function startStripeMock(bin: string): Promise<StripeMock> {
  const child: ChildProcess = spawn(bin, ['-http-addr', '127.0.0.1:0', '-https-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stripe-mock did not start within 20 s: ${output}`)), 20_000);
    const onData = (b: Buffer) => {
      output += b.toString();
      const m = /Listening for HTTP at address: (127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(`http://${m[1]}`);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stripe-mock exited with ${code}: ${output}`));
    });
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
