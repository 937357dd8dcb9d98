// BARRIER=1: wait until the service manager has handled every message sent
// before it. sd_notify messages are datagrams the manager reads at its own
// pace; a service that exits right after storeFds() may be gone (and its
// messages dropped with its cgroup) before they are read. The manager
// closes the pipe fd that comes with BARRIER=1 once it got there, which the
// read end sees as a hangup.
import { type Binding, defaultBinding } from '../binding';
import { callSync, codedError, invalidArgType, outOfRange } from '../errors';
import { OwnedFd } from '../owned-fd';
import { validateWait } from '../wait';
import { type NotifyOptions, notify, notifyTarget } from './notify';

/** How long {@link notifyBarrier} waits by default (sd_notify_barrier's own default is 5 s). */
export const DEFAULT_BARRIER_TIMEOUT_MS = 5000;

export interface NotifyBarrierOptions extends Omit<NotifyOptions, 'fds'> {
  /** How long to wait for the manager; {@link DEFAULT_BARRIER_TIMEOUT_MS} by default. */
  timeoutMs?: number;
  /** Stops the wait when aborted (`ABORT_ERR`); the manager still handles the barrier. */
  signal?: AbortSignal;
}

/**
 * Sends BARRIER=1 with the write end of a pipe as its only fd, closes ours,
 * and resolves true once the manager has closed its copy (POLLHUP on the
 * read end): every message sent before has then been processed. Resolves
 * false when NOTIFY_SOCKET is unset. Rejects with code ERR_BARRIER_TIMEOUT
 * (fields `timeoutMs`, `operation: 'BARRIER'`) when the manager does not
 * answer in time. The wait runs on the event loop (uv_poll), no thread.
 */
export async function notifyBarrier(options: NotifyBarrierOptions = {}): Promise<boolean> {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const { timeoutMs = DEFAULT_BARRIER_TIMEOUT_MS, signal, ...notifyOptions } = options;
  validateWait({ signal });
  if (typeof timeoutMs !== 'number') throw invalidArgType('options.timeoutMs', 'of type number', timeoutMs);
  if (!(timeoutMs >= 0 && timeoutMs <= 0x7fffffff)) throw outOfRange('options.timeoutMs', '>= 0 and <= 2147483647', timeoutMs);
  const binding = notifyOptions.binding ?? defaultBinding();
  if (!notifyTarget(notifyOptions.env ?? process.env)) return false;

  const [r, w] = callSync('PIPE', {}, () => binding.pipeSync());
  const read = new OwnedFd(r, { binding }, { label: `barrier pipe ${r}` });
  try {
    const write = new OwnedFd(w, { binding }, { label: `barrier pipe ${w}` });
    try {
      await notify('BARRIER=1', { ...notifyOptions, binding, fds: [write] });
    } finally {
      // Ours must go too: the hangup comes only once no write end is left.
      write.close();
    }
    await hangup(read.fd, timeoutMs, binding, signal);
  } finally {
    read.close();
  }
  return true;
}

function hangup(fd: number, timeoutMs: number, binding: Binding, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      poller.close();
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      stop();
      reject(Object.assign(codedError('notifyBarrier was aborted', 'ABORT_ERR', { cause: signal!.reason, operation: 'BARRIER' }), { name: 'AbortError' }));
    };
    // Nothing writes into the pipe, so any readiness of the read end is
    // the hangup (EOF).
    const poller = new binding.unix.Poller(fd, () => {
      stop();
      resolve();
    });
    const timer = setTimeout(() => {
      stop();
      reject(
        codedError(
          `the service manager did not answer BARRIER=1 within ${timeoutMs} ms (messages sent before it may not have been processed)`,
          'ERR_BARRIER_TIMEOUT',
          { operation: 'BARRIER', timeoutMs },
        ),
      );
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    poller.start(true, false);
  });
}
