// Live updates in a row under LUOSession=: after the first, the service's
// fd store holds the *incoming* session, which the service finishes; PID 1
// makes a fresh outgoing session only for a name with no session in the
// store, and the kernel takes no new files into an incoming one. So the
// service swaps it itself, under the same FDNAME and kernel name, and the
// next start (or the next kexec) finds an ordinary outgoing session there.
import type { Binding } from '../binding';
import { invalidArgType, invalidState } from '../errors';
import { DEFAULT_DEVICE_PATH, LiveUpdate } from '../liveupdate';
import type { Session } from '../session';
import { notifyBarrier } from './barrier';
import { removeStoredFds, storeFds, validateFdName } from './fd-store';
import { luoSessionName } from './luo-session-name';
import { unitName } from './unit-name';

export interface RenewLuoSessionOptions {
  /** The unit that has `LUOSession=name`; this process's own unit by default. */
  unit?: string;
  devicePath?: string;
  /** How long to retry opening the device while PID 1 has it; 2000 ms by default. */
  retryBusyMs?: number;
  /** Where NOTIFY_SOCKET is read; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** @internal */
  binding?: Binding;
}

/**
 * After a live update: replaces the incoming `LUOSession=` session `name`
 * (retrieve your files and finish it first) with a fresh outgoing session
 * of the same kernel name, stored under the same FDNAME, and returns it.
 * Preserve your files into it again: the next `systemctl kexec` keeps them,
 * and the next boot hands it back as incoming, as the first time.
 *
 * Steps: close `incoming` (finishing it, if you did not), remove systemd's
 * copy from the store and wait for systemd to have done it (BARRIER), so
 * the kernel name is free; create the session (the device is opened only
 * for that, retried while PID 1 holds it); store it. Rejects with
 * ERR_INVALID_STATE outside systemd (no NOTIFY_SOCKET, no unit).
 */
export async function renewLuoSession(incoming: Session, name: string, options: RenewLuoSessionOptions = {}): Promise<Session> {
  validateFdName(name);
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  if (incoming.direction !== 'incoming') {
    throw invalidState(`session ${JSON.stringify(incoming.name)} is outgoing already: preserve into it`, { direction: incoming.direction });
  }
  const { env = process.env, retryBusyMs = 2000, devicePath = DEFAULT_DEVICE_PATH, binding } = options;
  const unit = options.unit ?? unitName();
  if (!unit) throw invalidState('renewLuoSession: this process runs in no systemd unit; pass options.unit', {});
  if (!env.NOTIFY_SOCKET) throw invalidState('renewLuoSession: NOTIFY_SOCKET is unset; only systemd can keep the session', {});
  const kernelName = luoSessionName(unit, name);
  incoming.close();
  // The store's copy is the last reference: the name is free once systemd dropped it.
  await removeStoredFds(name, { env });
  await notifyBarrier({ env });
  const lu = await LiveUpdate.open(devicePath, { retryBusyMs, binding });
  let session: Session;
  try {
    session = await lu.createSession(kernelName);
  } finally {
    lu.close();
  }
  try {
    await storeFds(name, [session], { env });
    await notifyBarrier({ env });
  } catch (err) {
    session.close();
    throw err;
  }
  return session;
}
