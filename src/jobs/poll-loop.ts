// A background loop for workers and jobs: runs `tick` every `intervalMs` (sooner when kicked),
// never two ticks at once; `stop` waits for the running tick so shutdown loses no work.
export interface PollLoop {
  start(): void;
  stop(): Promise<void>;
  /** Runs the next tick now (e.g. new work was queued in this process). */
  kick(): void;
  readonly running: boolean;
}

export function createPollLoop(tick: () => Promise<void>, intervalMs: number, onError: (err: unknown) => void): PollLoop {
  let running = false;
  let closing = false;
  let kicked = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });
  }

  return {
    get running() {
      return running && !closing;
    },
    start() {
      if (running) return;
      running = true;
      closing = false;
      loop = (async () => {
        while (!closing) {
          kicked = false;
          try {
            await tick();
          } catch (err) {
            onError(err);
          }
          if (closing) break;
          if (!kicked) await sleep(intervalMs);
        }
      })();
    },
    async stop() {
      closing = true;
      wake?.();
      await loop;
      loop = undefined;
      running = false;
      closing = false;
    },
    kick() {
      kicked = true;
      wake?.();
    },
  };
}
