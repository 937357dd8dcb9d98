import * as fs from 'node:fs';
import { type Binding, defaultBinding } from './binding';
import { LiveUpdateError, callAsync, callSync, fromNative } from './errors';
import { findHolders } from './holder';
import { OwnedFd, type OwnedFdOptions } from './owned-fd';
import { Session, type SessionDirection, knownSession } from './session';
import { validateSessionName, validateString } from './validate';

/** Where the kernel's LUO device lives. */
export const DEFAULT_DEVICE_PATH = '/dev/liveupdate';

export interface LiveUpdateOpenOptions extends OwnedFdOptions {
  /** Where to look for the process holding the device on EBUSY. */
  procRoot?: string;
}

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

  /** Opens the device (O_RDWR | O_CLOEXEC). */
  static openSync(path: string = DEFAULT_DEVICE_PATH, options: LiveUpdateOpenOptions = {}): LiveUpdate {
    validateString(path, 'path');
    const binding = options.binding ?? defaultBinding();
    try {
      return new LiveUpdate(binding.openSync(path, binding.constants.O_RDWR), path, binding);
    } catch (err) {
      throw openError(err, path, options.procRoot);
    }
  }

  /** Promise form of {@link LiveUpdate.openSync}. */
  static async open(path: string = DEFAULT_DEVICE_PATH, options: LiveUpdateOpenOptions = {}): Promise<LiveUpdate> {
    validateString(path, 'path');
    const binding = options.binding ?? defaultBinding();
    try {
      return new LiveUpdate(await binding.open(path, binding.constants.O_RDWR), path, binding);
    } catch (err) {
      throw openError(err, path, options.procRoot);
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
    const out = callSync(operation, { session: name, fd }, () => this.binding.ioctlSync(fd, operation, { name }));
    return this.#wrap(out.fd!, name, direction);
  }

  async #session(operation: SessionIoctl, name: string, direction: SessionDirection): Promise<Session> {
    validateSessionName(name);
    const out = await this.withFd((fd) =>
      callAsync(operation, { session: name, fd }, () => this.binding.ioctl(fd, operation, { name })),
    );
    return this.#wrap(out.fd!, name, direction);
  }

  #wrap(fd: number, name: string, direction: SessionDirection): Session {
    return new Session(fd, { binding: this.binding, ...knownSession(name, direction) });
  }
}

type SessionIoctl = 'LIVEUPDATE_IOCTL_CREATE_SESSION' | 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION';

function openError(err: unknown, path: string, procRoot?: string): unknown {
  const code = (err as { code?: string }).code;
  if (code !== 'EBUSY') return fromNative(err, 'LIVEUPDATE_OPEN', { path });
  const target = resolve(path);
  const holders = findHolders(target, procRoot);
  const holder = holders.find((h) => h.pid !== process.pid) ?? holders[0];
  const detail = holder && `held by pid ${holder.pid} (${holder.command})${holder.pid === process.pid ? ', this process' : ''}`;
  const wrapped = fromNative(err, 'LIVEUPDATE_OPEN', { path, detail });
  if (holder && wrapped instanceof LiveUpdateError) wrapped.holder = holder;
  return wrapped;
}

function resolve(path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path;
  }
}
