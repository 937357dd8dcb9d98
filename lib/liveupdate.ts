import * as fs from 'node:fs';
import { type Binding, defaultBinding } from './binding';
import { LiveUpdateError, callAsync, callSync, codedError, fromNative, invalidArgType, outOfRange } from './errors';
import { findHolders } from './holder';
import { OwnedFd, type OwnedFdOptions } from './owned-fd';
import { poolGate } from './pool-gate';
import { KnownSession, Session, type SessionDirection } from './session';
import { validateSessionName, validateString } from './validate';

/** Where the kernel's LUO device lives. */
export const DEFAULT_DEVICE_PATH = '/dev/liveupdate';

export interface LiveUpdateOpenOptions extends OwnedFdOptions {
  /** Where to look for the process holding the device on EBUSY. */
  procRoot?: string;
  /**
   * On EBUSY, keep retrying for up to this many milliseconds (0, the
   * default: fail at once). On a systemd host PID 1 opens the device
   * briefly at unit starts (LUOSession=) and at shutdown.
   */
  retryBusyMs?: number;
}

// Short first (PID 1 holds the device for milliseconds), then backing off.
const FIRST_RETRY_MS = 5;
const MAX_RETRY_MS = 100;

/**
 * The open `/dev/liveupdate` device. Only one process may have it open at a
 * time (a second open fails with EBUSY, naming the holder). Sessions made
 * through it have their own fds and outlive it.
 */
export class LiveUpdate extends OwnedFd {
  /** The device path this was opened from. */
  readonly path: string;

  private constructor(fd: number, path: string, binding: Binding) {
    super(fd, { binding }, { label: path });
    this.path = path;
  }

  /**
   * Opens the device (O_RDWR | O_CLOEXEC). EBUSY names the process holding
   * it; with `retryBusyMs` it is retried (blocking this thread in short
   * sleeps) until the device is free or the time is up.
   *
   * What opened is then checked to be the LUO device with an ioctl that
   * changes nothing: a path to anything else (`/dev/null`, a regular file)
   * fails here with `ENOTTY` (syscall `ioctl`), a session's fd with
   * `ERR_LIVEUPDATE_NOT_DEVICE`, and the file is closed. (A driver that
   * answers unknown ioctls with EINVAL instead of ENOTTY passes the probe and
   * fails at the first session call.)
   */
  static openSync(path: string = DEFAULT_DEVICE_PATH, options: LiveUpdateOpenOptions = {}): LiveUpdate {
    const { binding, retryBusyMs } = openArgs(path, options);
    const deadline = Date.now() + retryBusyMs;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      try {
        return new LiveUpdate(checkIsDeviceSync(binding, binding.openSync(path, binding.constants.O_RDWR), path), path, binding);
      } catch (err) {
        const wait = retryWait(err, deadline, delay);
        if (wait === undefined) throw openError(err, path, options.procRoot, retryBusyMs);
        sleepSync(wait);
      }
    }
  }

  /**
   * Promise form of {@link LiveUpdate.openSync}; retries wait on timers, not
   * the thread. The open runs on libuv's thread pool, which starts its
   * threads on first use: a program that goes on to use the Promise forms
   * pays for that here rather than in its first preserve or retrieve.
   */
  static async open(path: string = DEFAULT_DEVICE_PATH, options: LiveUpdateOpenOptions = {}): Promise<LiveUpdate> {
    const { binding, retryBusyMs } = openArgs(path, options);
    const deadline = Date.now() + retryBusyMs;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      try {
        return new LiveUpdate(await checkIsDevice(binding, await poolGate(binding).run(() => binding.open(path, binding.constants.O_RDWR)), path), path, binding);
      } catch (err) {
        const wait = retryWait(err, deadline, delay);
        if (wait === undefined) throw openError(err, path, options.procRoot, retryBusyMs);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** Creates an outgoing session (LIVEUPDATE_IOCTL_CREATE_SESSION). Keep it open through the kexec. */
  createSessionSync(name: string): Session {
    return this.#sessionSync('LIVEUPDATE_IOCTL_CREATE_SESSION', name, 'outgoing');
  }

  /** Promise form of {@link LiveUpdate.createSessionSync}. */
  createSession(name: string): Promise<Session> {
    return this.#session('LIVEUPDATE_IOCTL_CREATE_SESSION', name, 'outgoing');
  }

  /** Retrieves a session kept by the previous kernel (LIVEUPDATE_IOCTL_RETRIEVE_SESSION). */
  retrieveSessionSync(name: string): Session {
    return this.#sessionSync('LIVEUPDATE_IOCTL_RETRIEVE_SESSION', name, 'incoming');
  }

  /** Promise form of {@link LiveUpdate.retrieveSessionSync}. */
  retrieveSession(name: string): Promise<Session> {
    return this.#session('LIVEUPDATE_IOCTL_RETRIEVE_SESSION', name, 'incoming');
  }

  #sessionSync(operation: SessionIoctl, name: string, direction: SessionDirection): Session {
    validateSessionName(name);
    const fd = this.fd;
    let out;
    try {
      out = this.binding.ioctlSync(fd, this.binding.ioctlLayout[operation].index, name) as number;
    } catch (err) {
      throw fromNative(err, operation, { session: name, fd });
    }
    return this.#wrap(out, name, direction);
  }

  async #session(operation: SessionIoctl, name: string, direction: SessionDirection): Promise<Session> {
    validateSessionName(name);
    const out = await this.withFd((fd) =>
      callAsync(operation, { session: name, fd }, this.binding, () => this.binding.ioctl(fd, this.binding.ioctlLayout[operation].index, name)),
    );
    return this.#wrap(out as number, name, direction);
  }

  #wrap(fd: number, name: string, direction: SessionDirection): Session {
    return new Session(fd, new KnownSession(name, direction, this.binding));
  }
}

type SessionIoctl = 'LIVEUPDATE_IOCTL_CREATE_SESSION' | 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION';

function openArgs(path: string, options: LiveUpdateOpenOptions) {
  validateString(path, 'path');
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const { retryBusyMs = 0 } = options;
  if (typeof retryBusyMs !== 'number') throw invalidArgType('options.retryBusyMs', 'of type number', retryBusyMs);
  if (!(retryBusyMs >= 0 && retryBusyMs <= 0x7fffffff)) throw outOfRange('options.retryBusyMs', '>= 0 and <= 2147483647', retryBusyMs);
  return { binding: options.binding ?? defaultBinding(), retryBusyMs };
}

// Any file opens; only the LUO device answers a session-only request
// (GET_NAME) with EINVAL, from the range check in luo_ioctl(). Other files
// say ENOTTY, a session fd answers it. The probe changes nothing in the
// kernel, so a wrong path (/dev/null, a typo'd symlink) fails at open, not
// at the first create with an error about an fd.
const PROBE = 'LIVEUPDATE_SESSION_GET_NAME';

function checkIsDeviceSync(binding: Binding, fd: number, path: string): number {
  let err: unknown;
  try {
    binding.ioctlSync(fd, binding.ioctlLayout[PROBE].index);
  } catch (e) {
    err = e;
  }
  return probed(binding, fd, path, err);
}

async function checkIsDevice(binding: Binding, fd: number, path: string): Promise<number> {
  let err: unknown;
  try {
    await poolGate(binding).run(() => binding.ioctl(fd, binding.ioctlLayout[PROBE].index));
  } catch (e) {
    err = e;
  }
  return probed(binding, fd, path, err);
}

function probed(binding: Binding, fd: number, path: string, err: unknown): number {
  if ((err as { code?: string } | undefined)?.code === 'EINVAL') return fd;
  binding.closeSync(fd);
  if (err === undefined) {
    throw codedError(`${path} is a LUO session, not the Live Update Orchestrator device`, 'ERR_LIVEUPDATE_NOT_DEVICE', { path });
  }
  throw err; // wrapped by openError(): ENOTTY there means "not the device"
}

// How long to sleep before the next try, or undefined to give up.
function retryWait(err: unknown, deadline: number, delay: number): number | undefined {
  if ((err as { code?: string }).code !== 'EBUSY') return undefined;
  const left = deadline - Date.now();
  return left > 0 ? Math.min(delay, left) : undefined;
}

// Atomics.wait sleeps without spinning; the synchronous form may block.
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function openError(err: unknown, path: string, procRoot?: string, retriedMs = 0): unknown {
  const code = (err as { code?: string }).code;
  if (code !== 'EBUSY') return fromNative(err, 'LIVEUPDATE_OPEN', { path });
  const target = resolve(path);
  const holders = findHolders(target, procRoot);
  const holder = holders.find((h) => h.pid !== process.pid) ?? holders[0];
  const parts: string[] = [];
  if (holder) {
    parts.push(`held by pid ${holder.pid} (${holder.command})${holder.pid === process.pid ? ', this process' : ''}`);
    // systemd's PID 1 takes the device for moments only; waiting helps.
    if (holder.pid === 1) parts.push('PID 1 (systemd) opens it briefly at unit starts and at shutdown: retry with retryBusyMs');
  }
  if (retriedMs > 0) parts.push(`still busy after retrying for ${retriedMs} ms`);
  const wrapped = fromNative(err, 'LIVEUPDATE_OPEN', { path, detail: parts.length ? parts.join('; ') : undefined });
  if (wrapped instanceof LiveUpdateError) {
    if (holder) wrapped.holder = holder;
    if (retriedMs > 0) wrapped.retriedMs = retriedMs;
  }
  return wrapped;
}

function resolve(path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path;
  }
}
