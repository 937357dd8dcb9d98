import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { Binding } from './binding';
import { poolGate } from './pool-gate';

/** The uAPI (or libc) name of the call that failed, as it appears in `err.operation`. */
export type Operation =
  | 'LIVEUPDATE_OPEN'
  | 'LIVEUPDATE_IOCTL_CREATE_SESSION'
  | 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION'
  | 'LIVEUPDATE_SESSION_PRESERVE_FD'
  | 'LIVEUPDATE_SESSION_RETRIEVE_FD'
  | 'LIVEUPDATE_SESSION_FINISH'
  | 'LIVEUPDATE_SESSION_GET_NAME'
  | 'MEMFD_CREATE'
  | 'F_ADD_SEALS'
  | 'F_GET_SEALS'
  | 'MMAP'
  | 'MUNMAP'
  | 'F_GETFD'
  | 'F_SETFD'
  | 'PIPE'
  | 'SD_NOTIFY'
  | 'KEXEC_FILE_LOAD'
  | 'KEXEC_FILE_UNLOAD'
  | 'REBOOT_KEXEC'
  | 'CLOSE'
  | 'SOCKETPAIR'
  | 'LISTEN'
  | 'CONNECT'
  | 'ACCEPT'
  | 'SENDMSG'
  | 'RECVMSG'
  | 'SO_PEERCRED';

/** What a failed call was about; shows up in the message and as fields. */
export interface ErrorContext {
  path?: string;
  session?: string;
  token?: bigint;
  fd?: number;
  /** Appended to the meaning, e.g. who holds the device. */
  detail?: string;
}

type Meaning = (c: ErrorContext, operation: Operation) => string;

const q = (s: string | undefined) => JSON.stringify(s ?? '');

// What an errno means for each call, from the uAPI documentation
// (include/uapi/linux/liveupdate.h) and the kernel code behind it.
const MEANINGS: Partial<Record<Operation, Record<string, Meaning>>> = {
  LIVEUPDATE_OPEN: {
    ENOENT: (c) => `${c.path} does not exist: this kernel has no Live Update Orchestrator (CONFIG_LIVEUPDATE) or was booted without liveupdate=on`,
    EBUSY: (c) => `${c.path} is exclusive and another process has it open${c.detail ? ` (${c.detail})` : ''}`,
    EACCES: (c) => `opening ${c.path} needs root or write permission on the device`,
    EPERM: (c) => `opening ${c.path} needs root or write permission on the device`,
    EIO: () => 'the kernel could not read the sessions handed over by the previous kernel',
    // From the probe after open(): any file opens, only the device answers LUO ioctls.
    ENOTTY: (c) => `${c.path} is not the Live Update Orchestrator device: it does not answer LUO ioctls`,
  },
  LIVEUPDATE_IOCTL_CREATE_SESSION: {
    EEXIST: (c) => `a session named ${q(c.session)} already exists`,
    EINVAL: (c) => `the kernel refused the session name ${q(c.session)}`,
  },
  LIVEUPDATE_IOCTL_RETRIEVE_SESSION: {
    ENOENT: (c) => `no session named ${q(c.session)} was handed over by the previous kernel`,
    EINVAL: (c) => `session ${q(c.session)} was already retrieved`,
  },
  LIVEUPDATE_SESSION_PRESERVE_FD: {
    EBUSY: (c) => `fd ${c.fd} is already preserved (a file can be in one session only)`,
    EEXIST: (c) => `token ${c.token} is already used in session ${q(c.session)}`,
    ENOENT: (c) => `fd ${c.fd} is of a kind this kernel cannot preserve (today: memfds that are not hugetlb)`,
    EBADF: (c) => `fd ${c.fd} is not open`,
    EOPNOTSUPP: (c) => `fd ${c.fd} has seals this kernel cannot preserve`,
    EINVAL: (c) => `session ${q(c.session)} was not created in this kernel, so files cannot be preserved in it`,
    EFBIG: (c) => `fd ${c.fd} is too large to preserve`,
  },
  LIVEUPDATE_SESSION_RETRIEVE_FD: {
    ENOENT: (c) => `session ${q(c.session)} holds no file with token ${c.token}`,
    EINVAL: (c) => `session ${q(c.session)} was not retrieved after a live update, so it has no files to retrieve`,
  },
  LIVEUPDATE_SESSION_FINISH: {
    EBUSY: (c) => `a file in session ${q(c.session)} is not ready to be finished (its kernel handler refused)`,
    EINVAL: (c) => `session ${q(c.session)} was not retrieved after a live update, so there is nothing to finish`,
  },
  MEMFD_CREATE: {
    EINVAL: () => 'the kernel refused the memfd name or flags (a name is at most 249 bytes)',
  },
  F_ADD_SEALS: {
    EPERM: (c) => `fd ${c.fd} is sealed against new seals (F_SEAL_SEAL) or was created without allowSealing`,
    EBUSY: (c) => `fd ${c.fd} has a shared writable mapping, so it cannot be sealed against writes`,
    EINVAL: (c) => `fd ${c.fd} is not a memfd or does not know one of these seals`,
  },
  MMAP: {
    EPERM: (c) => `fd ${c.fd} is sealed against writes, so it cannot be mapped writable`,
    EACCES: (c) => `fd ${c.fd} is not open for reading (or, for a writable mapping, for writing)`,
    ENOMEM: () => 'no room in the address space, or the process has reached its mapping limit (vm.max_map_count)',
    ENODEV: (c) => `fd ${c.fd} is a file that cannot be mapped`,
  },
  KEXEC_FILE_LOAD: {
    EPERM: () => 'loading a kernel needs CAP_SYS_BOOT, and kexec must not be disabled (kernel.kexec_load_disabled)',
    ENOEXEC: () => 'the file is not a kernel image this kernel can boot',
    EBUSY: () => 'another kexec load is in progress',
    EKEYREJECTED: () => 'the kernel image signature was rejected',
  },
  CONNECT: {
    ENOENT: (c) => `nothing listens at ${c.path}`,
    ECONNREFUSED: (c) => `a socket file is at ${c.path}, but nothing listens on it`,
    EACCES: (c) => `no permission to connect to ${c.path}`,
    EPROTOTYPE: (c) => `${c.path} is not a SOCK_SEQPACKET socket`,
    EAGAIN: (c) => `the server at ${c.path} has too many pending connections`,
  },
  LISTEN: {
    EADDRINUSE: (c) => `${c.path} is already in use`,
  },
  SENDMSG: {
    EPIPE: () => 'the peer closed the socket',
    ECONNRESET: () => 'the peer closed the socket',
    ETOOMANYREFS: () => 'too many fds are in flight on this socket',
  },
  SD_NOTIFY: {
    ENOENT: (c) => `sd_notify: nothing is bound at NOTIFY_SOCKET=${c.path} (the service manager is gone, or this is another mount namespace)`,
    ECONNREFUSED: (c) => `sd_notify: no socket is bound at NOTIFY_SOCKET=${c.path}`,
    EPROTOTYPE: (c) => `sd_notify: NOTIFY_SOCKET=${c.path} is not a datagram socket`,
    EACCES: (c) => `sd_notify: no permission to send to NOTIFY_SOCKET=${c.path}`,
    EPERM: (c) => `sd_notify: no permission to send to NOTIFY_SOCKET=${c.path}`,
    EBADF: () => 'sd_notify: an fd to send is not open',
    EMSGSIZE: () => 'sd_notify: the message is larger than the socket takes',
    ETOOMANYREFS: () => 'sd_notify: too many fds are in flight',
  },
  REBOOT_KEXEC: {
    EINVAL: () => 'no kernel is loaded (call kexec.loadSync() first), or the kernel refused the live update',
    EBUSY: () => 'another kexec operation is in progress',
    EPERM: () => 'rebooting needs CAP_SYS_BOOT',
  },
};

// What an errno means for any LUO ioctl.
const IOCTL_MEANINGS: Record<string, Meaning> = {
  ENOTTY: (c, op) => `fd ${c.fd} is not ${op.startsWith('LIVEUPDATE_IOCTL_') ? '/dev/liveupdate' : 'a LUO session'}`,
  EINVAL: (c) => `fd ${c.fd} does not accept this request`,
  E2BIG: () => "the kernel's struct is smaller than this library's and the extra bytes are not zero (kernel too old)",
  ENOMEM: () => 'the kernel is out of memory',
};

const errorMap = getSystemErrorMap();
// Names for errnos libuv does not map (ENOEXEC, EKEYREJECTED, …).
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) if (!errnoNames.has(-value)) errnoNames.set(-value, name);

/**
 * A failed system call, shaped like Node's own system errors (`code`,
 * negative `errno`, `syscall`, message `CODE: …`) plus what the call was.
 */
export class LiveUpdateError extends Error {
  /** 'EBUSY', 'EEXIST', … */
  readonly code: string;
  /** Negative, as in Node's `fs` errors. */
  readonly errno: number;
  /** The system call: 'open', 'ioctl', 'memfd_create', 'fcntl', 'kexec_file_load', 'reboot', 'close'. */
  readonly syscall: string;
  /** The uAPI operation, e.g. 'LIVEUPDATE_SESSION_PRESERVE_FD'. */
  readonly operation: Operation;
  /** The C library's description of the errno. */
  readonly description: string;
  // `declare`: only present when known, so printed errors show no undefined fields.
  declare readonly path?: string;
  declare readonly session?: string;
  declare readonly token?: bigint;
  declare readonly fd?: number;
  /** For EBUSY on open: the process holding the device, when /proc shows it. */
  declare holder?: { pid: number; command: string };
  /** For EBUSY on open with `retryBusyMs`: how long it was retried. */
  declare retriedMs?: number;

  /**
   * @param errno negative, as Node reports it
   * @param native the C library's name and text for the errno, as the addon reports them
   */
  constructor(errno: number, syscall: string, operation: Operation, context: ErrorContext = {}, native: { code?: string; description?: string } = {}) {
    const entry = errorMap.get(errno);
    // The C library's name first: it is the one the kernel's uAPI documents
    // (libuv calls 95 ENOTSUP where the LUO docs say EOPNOTSUPP).
    const code = native.code ?? entry?.[0] ?? errnoNames.get(errno) ?? `Unknown system error ${errno}`;
    const description = native.description ?? entry?.[1] ?? 'unknown error';
    const meaning =
      MEANINGS[operation]?.[code]?.(context, operation) ??
      (syscall === 'ioctl' ? IOCTL_MEANINGS[code]?.(context, operation) : undefined) ??
      description;
    super(`${code}: ${meaning}, ${syscall} ${context.path ? `'${context.path}'` : operation}`);
    this.name = 'LiveUpdateError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.operation = operation;
    this.description = description;
    const self = this as { -readonly [K in keyof LiveUpdateError]: LiveUpdateError[K] };
    if (context.path !== undefined) self.path = context.path;
    if (context.session !== undefined) self.session = context.session;
    if (context.token !== undefined) self.token = context.token;
    if (context.fd !== undefined) self.fd = context.fd;
  }
}

interface NativeError {
  errno?: unknown;
  syscall?: unknown;
  code?: string;
  description?: string;
}

/** Turns what the addon threw into a LiveUpdateError; anything else passes through. */
export function fromNative(err: unknown, operation: Operation, context: ErrorContext = {}): unknown {
  const e = err as NativeError;
  if (err instanceof Error && typeof e.errno === 'number' && typeof e.syscall === 'string') {
    const wrapped = new LiveUpdateError(e.errno, e.syscall, operation, context, { code: e.code, description: e.description });
    Error.captureStackTrace(wrapped, fromNative);
    return wrapped;
  }
  return err;
}

/** Runs a synchronous native call, translating its failure. */
export function callSync<T>(operation: Operation, context: ErrorContext, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fromNative(err, operation, context);
  }
}

/**
 * Runs a Promise call into the addon: it takes its turn on libuv's pool
 * (see pool-gate.ts) and its rejection is translated.
 */
export async function callAsync<T>(operation: Operation, context: ErrorContext, binding: Binding, promise: () => Promise<T>): Promise<T> {
  try {
    return await poolGate(binding).run(promise);
  } catch (err) {
    throw fromNative(err, operation, context);
  }
}

type CodedError<E extends Error> = E & { code: string };

function coded<E extends Error>(err: E, code: string): CodedError<E> {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  // Node prints its own coded errors as `TypeError [CODE]: …`.
  if (err.stack) err.stack = err.stack.replace(err.name, `${err.name} [${code}]`);
  return err as CodedError<E>;
}

/** Node's ERR_INVALID_ARG_TYPE. */
export function invalidArgType(name: string, expected: string, actual: unknown): CodedError<TypeError> {
  return coded(new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

/** Node's ERR_INVALID_ARG_VALUE. */
export function invalidArgValue(name: string, value: unknown, reason: string): CodedError<TypeError> {
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${describe(value)}`), 'ERR_INVALID_ARG_VALUE');
}

/** Node's ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, value: unknown): CodedError<RangeError> {
  return coded(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${describe(value)}`), 'ERR_OUT_OF_RANGE');
}

/** An error of this library's own with a Node-style `code` and fields (a timeout, …). */
export function codedError(message: string, code: string, fields: Record<string, unknown> = {}): CodedError<Error> {
  return Object.assign(coded(new Error(message), code), fields);
}

/**
 * An environment variable (LISTEN_FDS, NOTIFY_SOCKET, …) that cannot be
 * used as it is: code ERR_INVALID_ENV, fields `variable` and `value`.
 */
export function invalidEnv(variable: string, value: string | undefined, reason: string, fields: Record<string, unknown> = {}): CodedError<Error> {
  return codedError(`${variable}=${JSON.stringify(value ?? '')} ${reason}`, 'ERR_INVALID_ENV', { variable, value, ...fields });
}

/** Using an object after close(): ERR_SESSION_CLOSED for sessions and the device, ERR_CLOSED for fds. */
export function closedError(what: string, code: 'ERR_SESSION_CLOSED' | 'ERR_CLOSED'): CodedError<Error> {
  return coded(new Error(`${what} is closed`), code);
}

/**
 * A call the kernel would reject in the object's current state, refused
 * before the syscall (for example retrieving files from an outgoing session).
 */
export function invalidState(message: string, fields: Record<string, unknown>): CodedError<Error> {
  return Object.assign(coded(new Error(message), 'ERR_INVALID_STATE'), fields);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `type bigint (${value}n)`;
  if (typeof value === 'string') return `type string (${JSON.stringify(value.length > 28 ? `${value.slice(0, 25)}...` : value)})`;
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value)})`;
}
