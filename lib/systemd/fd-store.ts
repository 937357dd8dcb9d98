// The service manager's fd store (FileDescriptorStoreMax=, and across a
// kexec FileDescriptorStorePreserve=): pushing fds into it and removing
// them, by FDNAME.
import { codedError, invalidArgType, invalidArgValue } from '../errors';
import type { FdLike } from '../validate';
import { type NotifyOptions, notify, notifySync } from './notify';

/** Longest FDNAME systemd accepts. */
export const FDNAME_MAX = 255;

export interface StoreFdsOptions extends Omit<NotifyOptions, 'fds'> {
  /**
   * Let the manager watch the fds and drop them on POLLHUP/POLLERR
   * (FDPOLL=1). Off by default: a session or memfd never "hangs up", and a
   * socket whose peer left would be dropped with the state meant to survive.
   */
  poll?: boolean;
}

/**
 * Checks an FDNAME: printable ASCII, 1..255 characters, no ':' (which
 * separates names in LISTEN_FDNAMES). Throws ERR_INVALID_ARG_VALUE.
 */
export function validateFdName(name: unknown, argName = 'name'): string {
  if (typeof name !== 'string') throw invalidArgType(argName, 'of type string', name);
  if (name.length < 1 || name.length > FDNAME_MAX) throw invalidArgValue(argName, name, `must be 1..${FDNAME_MAX} characters`);
  if (!/^[\x20-\x7e]+$/.test(name)) throw invalidArgValue(argName, name, 'must be printable ASCII');
  if (name.includes(':')) throw invalidArgValue(argName, name, 'must not contain ":" (it separates names in LISTEN_FDNAMES)');
  return name;
}

function storeState(name: string, fds: unknown, options: StoreFdsOptions) {
  validateFdName(name);
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  if (!Array.isArray(fds)) throw invalidArgType('fds', 'an array of file descriptors', fds);
  if (fds.length === 0) throw invalidArgValue('fds', fds, 'must hold at least one fd');
  const { poll = false, ...rest } = options;
  if (typeof poll !== 'boolean') throw invalidArgType('options.poll', 'of type boolean', poll);
  // systemd 254+ tells the service its FileDescriptorStoreMax= in $FDSTORE. It
  // closes what does not fit with a log line only, so refuse what never could.
  const env = rest.env ?? process.env;
  const max = Number(env.FDSTORE);
  if (env.NOTIFY_SOCKET && env.FDSTORE !== undefined && Number.isSafeInteger(max) && fds.length > max) {
    throw codedError(`storeFds: ${fds.length} fds can never fit this service's fd store (FileDescriptorStoreMax=${max}); systemd would close them`, 'ENOSPC', { max });
  }
  const state: Record<string, string | number> = { FDSTORE: 1, FDNAME: name };
  if (!poll) state.FDPOLL = 0;
  return { state, options: { ...rest, fds: fds as FdLike[] } };
}

/**
 * Puts `fds` in the service's fd store under `name` (FDSTORE=1, FDNAME=,
 * FDPOLL=0 unless `poll`). They come back at the next start through
 * {@link listenFds}. Sessions and memfds also survive `systemctl kexec`
 * when the unit has FileDescriptorStorePreserve=yes.
 *
 * Resolves false when nothing was stored (NOTIFY_SOCKET unset: not run by
 * systemd); a service that relies on the store must check. Rejects with
 * ERR_INVALID_ARG_VALUE, sending nothing, for a bad name or a session named
 * "systemd". The fds are duplicated at the call, so the caller may close
 * its own at once. The unit needs FileDescriptorStoreMax= > 0 (LUOSession=
 * implies it); otherwise systemd drops the fds with a log message only.
 * The same happens to fds beyond the maximum, which only the manager knows
 * how near it is: more fds in one call than `$FDSTORE` (the maximum, set
 * by systemd 254+) are refused with ENOSPC, sending nothing.
 */
export function storeFds(name: string, fds: readonly FdLike[], options: StoreFdsOptions = {}): Promise<boolean> {
  try {
    const store = storeState(name, fds, options);
    return notify(store.state, store.options);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Synchronous form of {@link storeFds}. */
export function storeFdsSync(name: string, fds: readonly FdLike[], options: StoreFdsOptions = {}): boolean {
  const store = storeState(name, fds, options);
  return notifySync(store.state, store.options);
}

/**
 * Removes every fd stored under `name` (FDSTOREREMOVE=1): the manager
 * closes them. After a live update this is how a service drops the finished
 * incoming session, so that its next start gets a fresh outgoing one
 * (LUOSession=) or it stores one it created itself.
 * Resolves false when NOTIFY_SOCKET is unset.
 */
export function removeStoredFds(name: string, options: Omit<NotifyOptions, 'fds'> = {}): Promise<boolean> {
  try {
    validateFdName(name);
    return notify({ FDSTOREREMOVE: 1, FDNAME: name }, { ...options, fds: [] });
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Synchronous form of {@link removeStoredFds}. */
export function removeStoredFdsSync(name: string, options: Omit<NotifyOptions, 'fds'> = {}): boolean {
  validateFdName(name);
  return notifySync({ FDSTOREREMOVE: 1, FDNAME: name }, { ...options, fds: [] });
}
