import type { IoctlInput, IoctlOperation, IoctlOutput } from '../types/binding';
import { type Binding, defaultBinding } from './binding';
import { callSync, fromNative, invalidArgType, invalidArgValue, invalidState } from './errors';
import { type Adoptable, type FdIdentity, OwnedFd, type OwnedFdOptions, adoptFd, adoptableFd, withDuplicate } from './owned-fd';
import { poolGate } from './pool-gate';
import { type FdLike, type Token, fdOf, tokenArg, validateOptions, validateToken } from './validate';

/** `outgoing`: created in this kernel, to be kept. `incoming`: retrieved after a live update. */
export type SessionDirection = 'outgoing' | 'incoming';

export interface SessionOptions extends OwnedFdOptions {
  /**
   * The session's direction, when the sender knows it. Without it the
   * kernel is asked (a PRESERVE_FD of fd -1, which it refuses with EINVAL on
   * incoming sessions and EBADF/EEXIST on outgoing ones, changing nothing).
   */
  direction?: SessionDirection;
}

/**
 * @internal What LiveUpdate (and the systemd fd store) pass for a session
 * whose name and direction they know, sparing the kernel probes: one object
 * per create, doubling as the options and as the session's identity in
 * errors and warnings.
 */
export class KnownSession implements SessionOptions, FdIdentity {
  readonly kind = 'session';
  readonly closedCode = 'ERR_SESSION_CLOSED';
  constructor(
    readonly name: string,
    readonly direction: SessionDirection,
    readonly binding: Binding,
  ) {}
}

// Which direction each session ioctl needs; the kernel answers EINVAL otherwise.
const NEEDS: Partial<Record<IoctlOperation, SessionDirection>> = {
  LIVEUPDATE_SESSION_PRESERVE_FD: 'outgoing',
  LIVEUPDATE_SESSION_RETRIEVE_FD: 'incoming',
  LIVEUPDATE_SESSION_FINISH: 'incoming',
};

const WHY: Record<SessionDirection, string> = {
  outgoing: 'files are preserved only in sessions created in this kernel',
  incoming: 'files are retrieved and sessions finished only after a live update, on sessions retrieved with retrieveSession()',
};

/**
 * A LUO session: a named group of preserved files, held by its fd.
 *
 * An outgoing session keeps its files preserved only while its fd is open:
 * keep it open through the kexec. Closing an incoming session finishes it.
 * A Session is never closed by garbage collection; a dropped one is
 * reported with a process warning.
 */
export class Session extends OwnedFd {
  /** The name given at creation (at most 63 bytes of UTF-8). */
  readonly name: string;
  /** Created here (`outgoing`) or retrieved after a live update (`incoming`). */
  readonly direction: SessionDirection;

  /**
   * Adopts a session fd that arrived from elsewhere (e.g. from a broker over
   * a UNIX socket). Its name is read back with SESSION_GET_NAME. An OwnedFd
   * is consumed; a number becomes owned by the Session. Nothing is taken if
   * the fd turns out not to be a session. Other objects with an `fd` are
   * refused (ERR_INVALID_ARG_TYPE): they still own it.
   */
  constructor(file: FdLike, options?: SessionOptions);
  /** @internal LiveUpdate passes what it already knows, sparing the kernel probes. */
  constructor(file: FdLike, options?: SessionOptions | KnownSession);
  constructor(file: FdLike, options: SessionOptions | KnownSession = {}) {
    if (options instanceof KnownSession) {
      super(file as number, options, options);
      this.name = options.name;
      this.direction = options.direction;
      return;
    }
    const fd = adoptableFd(file);
    validateOptions(options);
    const { direction } = options;
    if (direction !== undefined && typeof direction !== 'string') throw invalidArgType('options.direction', "'incoming' or 'outgoing'", direction);
    if (direction !== undefined && direction !== 'incoming' && direction !== 'outgoing') {
      throw invalidArgValue('options.direction', direction, "must be 'incoming' or 'outgoing'");
    }
    const facts = probeSession(fd, options.binding ?? defaultBinding(), direction);
    super(adoptFd(file as Adoptable), options, { kind: 'session', name: facts.name, closedCode: 'ERR_SESSION_CLOSED' });
    this.name = facts.name;
    this.direction = facts.direction;
  }

  // Each sync call below is the native call and nothing else on success:
  // the fd getter (the closed check), the direction check, and a try around
  // the call. The error context (an object) is built only on failure. Under
  // emulation, before V8 has optimized them, every extra JS call and object
  // per ioctl showed up as tens of µs (issue 8: get_name through the library
  // cost twice the addon alone).

  /** Asks the kernel for the session's name (LIVEUPDATE_SESSION_GET_NAME). */
  getNameSync(): string {
    const fd = this.fd;
    try {
      return this.binding.ioctlSync(fd, this.binding.ioctlLayout.LIVEUPDATE_SESSION_GET_NAME.index) as string;
    } catch (err) {
      throw this.#failed(err, 'LIVEUPDATE_SESSION_GET_NAME', fd);
    }
  }

  /** Promise form of {@link Session.getNameSync}. */
  async getName(): Promise<string> {
    return (await this.#ioctl('LIVEUPDATE_SESSION_GET_NAME')) as string;
  }

  /**
   * Preserves a file (today: a memfd) under `token` (LIVEUPDATE_SESSION_PRESERVE_FD).
   * The kernel pins every page of a memfd here: prefer {@link Session.preserve} for large ones.
   * The caller keeps its own fd; the session holds a reference of its own.
   */
  preserveSync(file: FdLike, token: Token): void {
    const target = fdOf(file);
    const t = tokenArg(token);
    if (this.direction !== 'outgoing') throw this.#wrongDirection('LIVEUPDATE_SESSION_PRESERVE_FD', 'outgoing');
    const fd = this.fd;
    try {
      this.binding.ioctlSync(fd, this.binding.ioctlLayout.LIVEUPDATE_SESSION_PRESERVE_FD.index, target, t);
    } catch (err) {
      throw this.#failed(err, 'LIVEUPDATE_SESSION_PRESERVE_FD', target, t);
    }
  }

  /**
   * Promise form of {@link Session.preserveSync}; the pinning runs off the
   * main thread. The file is duplicated up front and the copy is what the
   * kernel sees, so closing `file` before this settles cannot make another
   * file (one that got the same number) be preserved under `token`.
   */
  async preserve(file: FdLike, token: Token): Promise<void> {
    const target = fdOf(file);
    const t = validateToken(token);
    const operation = 'LIVEUPDATE_SESSION_PRESERVE_FD';
    if (this.direction !== 'outgoing') throw this.#wrongDirection(operation, 'outgoing');
    await withDuplicate(target, this.binding, operation, { session: this.name, token: t }, (copy) =>
      this.#ioctl(operation, [copy, t], { fd: target, token: t }),
    );
  }

  /** Retrieves the file preserved under `token` (LIVEUPDATE_SESSION_RETRIEVE_FD); incoming sessions only. */
  retrieveSync(token: Token): OwnedFd {
    const t = tokenArg(token);
    if (this.direction !== 'incoming') throw this.#wrongDirection('LIVEUPDATE_SESSION_RETRIEVE_FD', 'incoming');
    const fd = this.fd;
    let out;
    try {
      out = this.binding.ioctlSync(fd, this.binding.ioctlLayout.LIVEUPDATE_SESSION_RETRIEVE_FD.index, t) as number;
    } catch (err) {
      throw this.#failed(err, 'LIVEUPDATE_SESSION_RETRIEVE_FD', fd, t);
    }
    return new OwnedFd(out, { binding: this.binding });
  }

  /** Promise form of {@link Session.retrieveSync}. */
  async retrieve(token: Token): Promise<OwnedFd> {
    const t = validateToken(token);
    const fd = (await this.#ioctl('LIVEUPDATE_SESSION_RETRIEVE_FD', [t], { token: t })) as number;
    return new OwnedFd(fd, { binding: this.binding });
  }

  /**
   * Tells the kernel this incoming session is fully restored
   * (LIVEUPDATE_SESSION_FINISH). Retrieve every file first: the kernel
   * discards files that were not retrieved (closing an incoming session
   * finishes it too). EBUSY if a file's handler is not ready to finish.
   */
  finishSync(): void {
    if (this.direction !== 'incoming') throw this.#wrongDirection('LIVEUPDATE_SESSION_FINISH', 'incoming');
    const fd = this.fd;
    try {
      this.binding.ioctlSync(fd, this.binding.ioctlLayout.LIVEUPDATE_SESSION_FINISH.index);
    } catch (err) {
      throw this.#failed(err, 'LIVEUPDATE_SESSION_FINISH', fd);
    }
  }

  /** Promise form of {@link Session.finishSync}. */
  async finish(): Promise<void> {
    await this.#ioctl('LIVEUPDATE_SESSION_FINISH');
  }

  #wrongDirection(operation: IoctlOperation, needs: SessionDirection): Error {
    return invalidState(
      `${operation} on ${this.direction} session ${JSON.stringify(this.name)}: ${WHY[needs]} (the kernel would answer EINVAL)`,
      { operation, direction: this.direction, session: this.name },
    );
  }

  // `fd` is the fd the error is about: the file being preserved, else the session.
  #failed(err: unknown, operation: IoctlOperation, fd: number, token?: number | bigint): unknown {
    return fromNative(err, operation, { session: this.name, fd, token: token === undefined ? undefined : BigInt(token) });
  }

  // The Promise forms: the same checks, then the call on a worker while
  // withFd keeps the session's fd open. `about` is what an error names
  // besides the session: the fd (the caller's, not preserve's copy) and token.
  #ioctl(operation: IoctlOperation, inputs: IoctlInput[] = [], about: { fd?: number; token?: bigint } = {}): Promise<IoctlOutput> {
    const needs = NEEDS[operation];
    if (needs && needs !== this.direction) throw this.#wrongDirection(operation, needs);
    const index = this.binding.ioctlLayout[operation].index;
    return this.withFd(async (fd) => {
      try {
        return await poolGate(this.binding).run(() => this.binding.ioctl(fd, index, ...inputs));
      } catch (err) {
        throw this.#failed(err, operation, about.fd ?? fd, about.token);
      }
    });
  }
}

/**
 * @internal The name and direction of session fd `fd`, asked of the kernel
 * without changing anything. Throws (operation LIVEUPDATE_SESSION_GET_NAME)
 * when the fd is not a session.
 */
export function probeSession(fd: number, binding: Binding, direction?: SessionDirection): { name: string; direction: SessionDirection } {
  const name = callSync('LIVEUPDATE_SESSION_GET_NAME', { fd }, () =>
    binding.ioctlSync(fd, binding.ioctlLayout.LIVEUPDATE_SESSION_GET_NAME.index),
  ) as string;
  if (direction) return { name, direction };
  try {
    binding.ioctlSync(fd, binding.ioctlLayout.LIVEUPDATE_SESSION_PRESERVE_FD.index, -1, 0n);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EINVAL') return { name, direction: 'incoming' as const };
    if (code === 'EBADF' || code === 'EEXIST') return { name, direction: 'outgoing' as const };
    throw fromNative(err, 'LIVEUPDATE_SESSION_PRESERVE_FD', { fd, session: name });
  }
  throw new Error(`session ${JSON.stringify(name)} accepted fd -1 for preservation; this kernel breaks the LUO uAPI`);
}

