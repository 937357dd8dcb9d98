import { type InspectOptionsStylized, debuglog, inspect } from 'node:util';
import { type Binding, defaultBinding } from './binding';
import { type ErrorContext, type Operation, callSync, closedError, fromNative, invalidArgType, invalidState } from './errors';
import { poolGate } from './pool-gate';
import { validateFd, validateOptions } from './validate';

/** Options shared by every fd-owning object. */
export interface OwnedFdOptions {
  /**
   * The system-call layer; the compiled addon by default. Tests pass a fake.
   * @internal
   */
  binding?: Binding;
}

/** How a subclass names itself in errors and warnings. @internal */
export interface FdIdentity {
  /** A fixed label ("memfd 5 (cache)"); without one, `kind "name"` or `fd N`. */
  label?: string;
  /**
   * A kind and a name, put together as `session "vm-1"` only when a message
   * needs it: quoting (JSON.stringify) per object showed in the cost of a
   * session create+close (issue 8).
   */
  kind?: string;
  name?: string;
  closedCode?: 'ERR_CLOSED' | 'ERR_SESSION_CLOSED';
}

interface Unclosed {
  label: string;
  fd: number;
  /** The first frame outside this library, when creation sites are recorded. */
  createdAt: string | undefined;
}

// Where each object was made is recorded only under NODE_DEBUG=liveupdate.
// Capturing a stack costs several times a system call: it was most of the
// library's own cost per create+close (issue 8), paid for every object to
// serve a warning that fires only for a bug. The flag is read once, as
// Node's own debuglog does.
const recordCreationSite = debuglog('liveupdate').enabled;

const RESOLVED = Promise.resolve();

// The identity of an object that has none but its number.
const ANONYMOUS: FdIdentity = {};

// Objects are never closed on garbage collection: closing an outgoing
// session unpreserves its files, so a GC-time close would silently lose
// the state a live update is meant to keep (Node retired FileHandle's GC
// close, DEP0137, for similar reasons). A dropped object is reported and
// its fd stays open.
const unclosed = new FinalizationRegistry<Unclosed>(({ label, fd, createdAt }) => {
  process.emitWarning(
    `${label} (fd ${fd}) was garbage-collected without close(); the fd stays open until the process exits`,
    {
      type: 'LiveUpdateWarning',
      code: 'LIVEUPDATE_UNCLOSED',
      detail: createdAt ? `created ${createdAt}` : 'run with NODE_DEBUG=liveupdate to see where it was created',
    },
  );
});

// The site is formatted at once, not kept as a captured stack to format if
// the warning fires: a captured stack holds the receivers of its frames, so
// a session's record would keep the LiveUpdate that made it from ever being
// collected (and reported).
function callerStack(): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, callerStack);
  const frames = (holder.stack ?? '').split('\n').slice(1).map((l) => l.trim());
  // The first frame outside this library is where the user made the object.
  const user = frames.find((f) => !f.includes(`${__dirname}/`)) ?? frames[0] ?? 'at <unknown>';
  return user;
}

/**
 * A file descriptor this object owns: closed exactly once, by `close()` or
 * `using`, never by garbage collection, and never touched after it has
 * been closed or handed over with `detach()` (the number may belong to
 * another file by then).
 */
export class OwnedFd implements Disposable {
  #fd: number;
  #closed = false;
  // Promise calls in flight on this fd; a close() meanwhile is deferred
  // until they settle, so a worker thread never uses a recycled number.
  #pending = 0;
  #closeDeferred = false;
  // Kept as given (a subclass passes one object): the label is built only
  // when an error or a warning needs it.
  readonly #identity: FdIdentity;
  // Where this object waits in #unregistered, or -1 once registered (or closed).
  #slot = -1;
  /** @internal */
  protected readonly binding: Binding;

  // Registering with the FinalizationRegistry, for the unclosed warning, and
  // unregistering at close() were most of what the library added to a
  // session create+close (issue 8: a weak cell and an entry keyed by the
  // object, made and dropped again). Most objects are closed in the same
  // job that made them (a loop of create+close, a retrieve then close), so
  // they are registered at the end of that job, in a microtask, and only if
  // still open then; until that point this list holds them and close() just
  // empties the slot. No object can be collected unreported: the list holds
  // it strongly until it is registered.
  static #unregistered: (OwnedFd | undefined)[] = [];
  static #registerQueued = false;

  static #registerOpen(): void {
    const objects = OwnedFd.#unregistered;
    OwnedFd.#unregistered = [];
    OwnedFd.#registerQueued = false;
    for (const o of objects) {
      if (o === undefined) continue;
      o.#slot = -1;
      unclosed.register(o, { label: o.#label(), fd: o.#fd, createdAt: undefined }, o);
    }
  }

  /**
   * Takes ownership of `fd`: this object will close it.
   * @param fd an open file descriptor the caller gives up
   */
  constructor(fd: number, options?: OwnedFdOptions);
  /** @internal Subclasses name themselves in errors and warnings. */
  constructor(fd: number, options?: OwnedFdOptions, identity?: FdIdentity);
  constructor(fd: number, options: OwnedFdOptions = {}, identity: FdIdentity = ANONYMOUS) {
    this.#fd = validateFd(fd);
    this.binding = validateOptions(options).binding ?? defaultBinding();
    this.#identity = identity;
    if (recordCreationSite) {
      // Debugging: the site is captured now, and registered with it at once.
      unclosed.register(this, { label: this.#label(), fd, createdAt: callerStack() }, this);
    } else {
      this.#slot = OwnedFd.#unregistered.push(this) - 1;
      if (!OwnedFd.#registerQueued) {
        OwnedFd.#registerQueued = true;
        // A promise job, not queueMicrotask: test runners' fake timers
        // replace that global, and an unflushed list would keep every
        // dropped object alive and unreported.
        RESOLVED.then(() => OwnedFd.#registerOpen());
      }
    }
  }

  /** The fd number. Throws ERR_CLOSED (ERR_SESSION_CLOSED for sessions) once closed or detached. */
  get fd(): number {
    if (this.#closed) throw closedError(this.#label(), this.#identity.closedCode ?? 'ERR_CLOSED');
    return this.#fd;
  }

  /** True once closed or detached. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the fd. Idempotent: a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#release();
    if (this.#pending > 0) {
      this.#closeDeferred = true;
      return;
    }
    const fd = this.#fd;
    // A try, not callSync: no closure and context object per close.
    try {
      this.binding.closeSync(fd);
    } catch (err) {
      throw fromNative(err, 'CLOSE', { fd });
    }
  }

  /**
   * Gives up ownership and returns the raw fd; this object will never close it.
   * Throws ERR_INVALID_STATE while a Promise call on the fd is in flight.
   */
  detach(): number {
    const fd = this.fd;
    if (this.#pending > 0) {
      throw invalidState(`cannot detach ${this.#label()} while ${this.#pending} Promise call(s) on it are in flight`, { fd });
    }
    this.#release();
    return fd;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // console.log() would otherwise print the binding: the addon's whole
  // function table, and none of what a reader wants (which fd, which file,
  // still open?). The number is left out once closed: it may name another
  // file by then.
  [inspect.custom](depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    const type = this.constructor.name;
    if (depth < 0) return options.stylize(`[${type}]`, 'special');
    const fields = { ...(this.#closed ? {} : { fd: this.#fd }), ...this.inspectFields(), closed: this.#closed };
    return `${type} ${show(fields, { ...options, depth: options.depth == null ? options.depth : options.depth - 1 })}`;
  }

  /** @internal What inspection shows besides fd and closed: the public fields a subclass adds (a session's name). */
  protected inspectFields(): Record<string, unknown> {
    return Object.fromEntries(Object.entries(this).filter(([key]) => key !== 'binding'));
  }

  /** @internal Runs a Promise call on the fd, keeping the fd open until it settles. */
  protected async withFd<T>(call: (fd: number) => Promise<T>): Promise<T> {
    const fd = this.fd;
    this.#pending++;
    try {
      return await call(fd);
    } finally {
      if (--this.#pending === 0 && this.#closeDeferred) {
        this.#closeDeferred = false;
        // The user already saw close() succeed; a failure here has no one to report to.
        poolGate(this.binding)
          .run(() => this.binding.close(fd))
          .catch(() => {});
      }
    }
  }

  #release(): void {
    this.#closed = true;
    if (this.#slot >= 0) {
      const list = OwnedFd.#unregistered;
      list[this.#slot] = undefined;
      this.#slot = -1;
      // Trailing empty slots go at once: a loop of create+close in one job
      // keeps the list at one entry instead of one per object made.
      while (list.length > 0 && list[list.length - 1] === undefined) list.pop();
    } else {
      unclosed.unregister(this);
    }
  }

  // What errors and warnings call this object.
  #label(): string {
    const { label, kind, name } = this.#identity;
    if (label !== undefined) return label;
    return name === undefined ? `fd ${this.#fd}` : `${kind ?? 'fd'} ${JSON.stringify(name)}`;
  }
}

/**
 * A close-on-exec copy of `fd` (F_DUPFD_CLOEXEC), owned by the caller. A
 * Promise form hands its worker this copy, never the caller's number: the
 * caller may close its fd at once, and the number may name another file by
 * the time the worker runs. Fails (EBADF) if `fd` is not open now.
 * @internal
 */
export function duplicateFd(fd: number, binding: Binding, operation: Operation, context: ErrorContext = {}): OwnedFd {
  return new OwnedFd(callSync(operation, { fd, ...context }, () => binding.unix.dup(fd)), { binding });
}

/**
 * Runs `body` with a copy of `fd` (as {@link duplicateFd}) and closes the
 * copy when `body` settles, whatever the outcome: a single Promise call's
 * hold on a caller's fd. The copy never outlives this call, so it is a
 * number, not an OwnedFd: an OwnedFd still open at the end of its job is
 * registered for the unclosed-object warning and unregistered at close,
 * which measured about 250 µs of a 1 ms Promise preserve in the guest
 * (issue 8; bench/node-pass.cjs's Promise rows).
 * @internal
 */
export async function withDuplicate<T>(
  fd: number,
  binding: Binding,
  operation: Operation,
  context: ErrorContext,
  body: (copy: number) => Promise<T>,
): Promise<T> {
  const copy = callSync(operation, { fd, ...context }, () => binding.unix.dup(fd));
  try {
    return await body(copy);
  } finally {
    try {
      binding.closeSync(copy);
    } catch (err) {
      // Only if the copy was closed behind our back: nothing else fails a
      // close of a dup we own. Reported rather than swallowed.
      throw fromNative(err, 'CLOSE', { fd: copy });
    }
  }
}

/** What can be adopted: a raw fd number, or an OwnedFd (which is consumed). */
export type Adoptable = number | OwnedFd;

/**
 * Checks that `file` can be adopted and returns its fd, without taking it
 * yet. Objects that merely carry an `fd` (a FileHandle) are refused: they
 * still own their fd and would close it behind the adopter's back.
 */
export function adoptableFd(file: unknown, argName = 'file'): number {
  if (typeof file === 'number') return validateFd(file, argName);
  if (file instanceof OwnedFd) return file.fd;
  throw invalidArgType(argName, 'a file descriptor number or an OwnedFd', file);
}

/** Takes ownership: an OwnedFd is detached (consumed), a number is taken as is. */
export function adoptFd(file: Adoptable): number {
  return typeof file === 'number' ? file : file.detach();
}
