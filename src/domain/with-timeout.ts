// One way to bound a promise in time: the result, or a TimeoutError after `ms` (the timer is always
// cleared, so a settled promise never keeps the process alive).

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** `what` names the awaited thing in the error ("database ping"). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
