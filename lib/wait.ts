// Calls that wait on another process (the broker, a socket's peer, the
// service manager) take a signal and a timeout, the way Node's own APIs do.
import { codedError, invalidArgType, outOfRange } from './errors';

/** How long a call may wait on another process. */
export interface WaitOptions {
  /** Stops the wait when aborted: the call rejects with `ABORT_ERR` (the signal's reason as `cause`). */
  signal?: AbortSignal;
  /** Stops the wait after this many milliseconds: the call rejects with `ETIMEDOUT`. */
  timeoutMs?: number;
}

/** Checks `options.signal` and `options.timeoutMs`. */
export function validateWait(options: WaitOptions, name = 'options'): WaitOptions {
  const { signal, timeoutMs } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgType(`${name}.signal`, 'an AbortSignal', signal);
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number') throw invalidArgType(`${name}.timeoutMs`, 'of type number', timeoutMs);
    if (!(timeoutMs >= 0 && timeoutMs <= 0x7fffffff)) throw outOfRange(`${name}.timeoutMs`, '>= 0 and <= 2147483647', timeoutMs);
  }
  return { signal, timeoutMs };
}

/**
 * A Promise for `what` that `start` settles, unless the signal or the
 * timeout ends the wait first; then the function `start` returned is
 * called to forget the wait (the other process may still answer later).
 */
export function waitFor<T>(what: string, options: WaitOptions | undefined, start: (resolve: (value: T) => void, reject: (err: unknown) => void) => () => void): Promise<T> {
  const { signal, timeoutMs } = options ?? {};
  if (signal?.aborted) return Promise.reject(aborted(what, signal));
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const stop = (err: unknown) => {
      if (settled) return;
      finish();
      forget();
      reject(err);
    };
    const onAbort = () => stop(aborted(what, signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => stop(codedError(`${what} timed out after ${timeoutMs} ms`, 'ETIMEDOUT', { timeoutMs })), timeoutMs);
    }
    const forget = start(
      (value) => {
        if (settled) return;
        finish();
        resolve(value);
      },
      (err) => {
        if (settled) return;
        finish();
        reject(err);
      },
    );
  });
}

function aborted(what: string, signal: AbortSignal) {
  const err = codedError(`${what} was aborted`, 'ABORT_ERR', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}
