// sd_notify(3): one datagram to $NOTIFY_SOCKET, with this process's
// credentials and optionally fds. The wire work is the addon's
// unix.sendDatagram; this file decides what is sent and whether at all.
import { type Binding, defaultBinding } from '../binding';
import { callSync, fromNative, invalidArgType, invalidArgValue, invalidEnv, outOfRange } from '../errors';
import { OwnedFd } from '../owned-fd';
import { type FdLike, fdOf } from '../validate';

/**
 * What to tell the service manager: a ready-made message (`"READY=1"`,
 * `"STATUS=loading\nREADY=1"`) or assignments (`{ READY: 1, STATUS: 'up' }`).
 */
export type NotifyState = string | Readonly<Record<string, string | number>>;

export interface NotifyOptions {
  /** Fds to send with the message (SCM_RIGHTS); they stay open here. */
  fds?: readonly FdLike[];
  /** Where NOTIFY_SOCKET is read; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * The system-call layer; the compiled addon by default.
   * @internal
   */
  binding?: Binding;
}

/** Most fds one message can carry (the kernel's SCM_MAX_FD). */
export const NOTIFY_MAX_FDS = 253;

// sun_path is 108 bytes: a path needs its NUL, an abstract name (after its
// leading NUL) may fill the rest.
const SUN_PATH = 108;

/** Where $NOTIFY_SOCKET points: `path` as written, `address` as the kernel takes it. @internal */
export interface NotifyTarget {
  path: string;
  address: Buffer;
}

/**
 * Reads $NOTIFY_SOCKET: undefined when unset or empty (not under a service
 * manager). A path or an `@abstract` name; `vsock:` addresses (systemd in a
 * VM talking to its host) are refused with ERR_INVALID_ENV, as is anything
 * else sd_notify would not take.
 * @internal
 */
export function notifyTarget(env: NodeJS.ProcessEnv = process.env): NotifyTarget | undefined {
  const value = env.NOTIFY_SOCKET;
  if (!value) return undefined;
  let address: Buffer;
  if (value.startsWith('@')) address = Buffer.concat([Buffer.from([0]), Buffer.from(value.slice(1))]);
  else if (value.startsWith('/')) address = Buffer.from(value);
  else if (value.startsWith('vsock:') || value.startsWith('vsock-')) {
    throw invalidEnv('NOTIFY_SOCKET', value, 'is an AF_VSOCK address, which this library does not support (only AF_UNIX paths and @abstract names)');
  } else throw invalidEnv('NOTIFY_SOCKET', value, 'is neither an absolute path nor an @abstract name');
  // Both forms give 1..107 bytes of name: a path keeps a byte for its NUL,
  // an abstract name's first byte is the NUL.
  if (address.length < 2 || address.length > SUN_PATH - (address[0] === 0 ? 0 : 1)) {
    throw invalidEnv('NOTIFY_SOCKET', value, 'must be a socket path or @name of 1..107 bytes');
  }
  return { path: value, address };
}

/** The message bytes for a state. @internal */
export function formatState(state: unknown): Buffer {
  if (typeof state === 'string') {
    if (state.length === 0) throw invalidArgValue('state', state, 'must not be empty');
    return Buffer.from(state);
  }
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw invalidArgType('state', 'a string or an object of assignments', state);
  }
  const lines: string[] = [];
  for (const [key, value] of Object.entries(state)) {
    if (key.length === 0 || /[=\n\0]/.test(key)) throw invalidArgValue(`state[${JSON.stringify(key)}]`, key, 'must be a variable name (no "=", newline or NUL)');
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw invalidArgType(`state.${key}`, 'of type string or number', value);
    }
    const text = String(value);
    // A newline would start a new assignment of the sender's choosing.
    if (/[\n\0]/.test(text)) throw invalidArgValue(`state.${key}`, value, 'must not contain a newline or NUL');
    lines.push(`${key}=${text}\n`);
  }
  if (lines.length === 0) throw invalidArgValue('state', state, 'must hold at least one assignment');
  return Buffer.from(lines.join(''));
}

// systemd keeps the session name "systemd" for its own fd store across a
// kexec and skips a pushed session of that name ("hijack"): the service
// would believe its state is kept while it is dropped. Any fd is asked,
// since an OwnedFd or a raw number can be a session too; an fd that is not
// a session (GET_NAME fails) is fine to send.
function refuseReservedSessions(fds: readonly number[], files: readonly unknown[], binding: Binding): void {
  fds.forEach((fd, i) => {
    let name: string | undefined;
    try {
      name = binding.ioctlSync(fd, binding.ioctlLayout.LIVEUPDATE_SESSION_GET_NAME.index) as string;
    } catch {
      return;
    }
    if (name === 'systemd') {
      throw invalidArgValue(
        `fds[${i}]`,
        files[i],
        'is the LUO session "systemd", a name the service manager keeps for its own fd store: it would drop this session at a kexec',
      );
    }
  });
}

interface Prepared {
  target: NotifyTarget | undefined;
  payload: Buffer;
  fds: number[];
  binding: Binding;
}

// Every argument is checked, and NOTIFY_SOCKET parsed, whether or not a
// service manager is there: a bad call shows up in development too.
function prepare(state: unknown, options: NotifyOptions): Prepared {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const payload = formatState(state);
  const files = options.fds ?? [];
  if (!Array.isArray(files)) throw invalidArgType('options.fds', 'an array of file descriptors', files);
  if (files.length > NOTIFY_MAX_FDS) throw outOfRange('options.fds.length', `<= ${NOTIFY_MAX_FDS}`, files.length);
  const fds = files.map((f, i) => fdOf(f, `fds[${i}]`));
  const binding = options.binding ?? defaultBinding();
  const target = notifyTarget(options.env ?? process.env);
  if (target) refuseReservedSessions(fds, files, binding);
  return { target, payload, fds, binding };
}

/**
 * Sends `state` to the service manager (sd_notify(3)): one datagram to
 * $NOTIFY_SOCKET with SCM_CREDENTIALS, and `options.fds` (SCM_RIGHTS) when
 * given. Returns false when NOTIFY_SOCKET is unset (not run by systemd);
 * throws on a real failure (`err.operation` 'SD_NOTIFY', `err.syscall`
 * 'connect' or 'sendmsg'). May wait while the manager's queue is full.
 *
 * @example notifySync({ READY: 1, STATUS: 'serving' })
 */
export function notifySync(state: NotifyState, options: NotifyOptions = {}): boolean {
  const { target, payload, fds, binding } = prepare(state, options);
  if (!target) return false;
  callSync('SD_NOTIFY', { path: target.path }, () => binding.unix.sendDatagramSync(target.address, payload, fds));
  return true;
}

/**
 * Promise form of {@link notifySync}; the send runs off the event loop.
 * Each fd is duplicated before this returns and the copies are closed when
 * it settles, so the caller may close its own fds at once: what is sent is
 * what they were at the call.
 */
export async function notify(state: NotifyState, options: NotifyOptions = {}): Promise<boolean> {
  const { target, payload, fds, binding } = prepare(state, options);
  if (!target) return false;
  // Before the first await, so still within the caller's turn.
  const copies: OwnedFd[] = [];
  try {
    for (const fd of fds) copies.push(new OwnedFd(callSync('SD_NOTIFY', { fd }, () => binding.unix.dup(fd)), { binding }));
    // Not through the pool gate (callAsync): the send blocks while the
    // receiver's queue is full, for as long as PID 1 is busy, and a turn
    // held that long would stall every other Promise call. The gate is for
    // work that needs a CPU.
    try {
      await binding.unix.sendDatagram(target.address, payload, copies.map((c) => c.fd));
    } catch (err) {
      throw fromNative(err, 'SD_NOTIFY', { path: target.path });
    }
  } finally {
    for (const c of copies) c.close();
  }
  return true;
}
