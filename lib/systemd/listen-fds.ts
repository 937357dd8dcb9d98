// sd_listen_fds(3) for LUO: the fds systemd passes a service (sockets, and
// the fd store: memfds and session fds kept across restarts and kexecs),
// each adopted once into the object that fits what the kernel says it is.
import { type Binding, defaultBinding } from '../binding';
import { callSync, invalidArgType, invalidEnv } from '../errors';
import { Memfd } from '../memfd';
import { OwnedFd } from '../owned-fd';
import { KnownSession, Session, type SessionDirection, probeSession } from '../session';

/** One fd handed over by systemd, with its FDNAME. */
export type ListenedFd =
  /** A LUO session; `file.name` is the kernel's session name, `file.direction` read from the kernel. */
  | { name: string; kind: 'session'; file: Session }
  /** A sealable shmem file (F_GET_SEALS works): a memfd; a retrieved one shows as "/ (deleted)". */
  | { name: string; kind: 'memfd'; file: Memfd }
  /** Anything else (sockets, pipes, …). */
  | { name: string; kind: 'other'; file: OwnedFd };

export interface ListenFdsOptions {
  /** Remove LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PIDFDID afterwards (true by default). */
  unsetEnvironment?: boolean;
  /** Where the variables are read (and unset); `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * The system-call layer; the compiled addon by default.
   * @internal
   */
  binding?: Binding;
}

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PIDFDID'] as const;

type Kind =
  | { kind: 'session'; session: { name: string; direction: SessionDirection } }
  | { kind: 'memfd' }
  | { kind: 'other' };

interface Announced {
  fd: number;
  name: string;
  flags: number;
}

/**
 * The fds systemd passed this process (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES; fds from 3), each adopted into a Session, a Memfd or an
 * OwnedFd as the kernel classifies it (SESSION_GET_NAME, then F_GET_SEALS),
 * with FD_CLOEXEC set: systemd passes them inheritable, and a child holding
 * a session fd would keep the session alive.
 *
 * Returns [] when the variables are not for this process (LISTEN_PID unset
 * or another pid). Malformed variables, a name count that differs from
 * LISTEN_FDS, or an announced fd that is not open throw ERR_INVALID_ENV
 * (fields `variable`, `value`) with no fd adopted. All fds are checked and
 * classified before any is adopted, so a failure midway leaves every fd as
 * it was, unowned (some may already be close-on-exec); nothing is closed.
 *
 * The variables are removed afterwards, on every outcome as sd_listen_fds
 * does, unless `unsetEnvironment: false`: a second call (or a child) must
 * not adopt the same fds again.
 */
export function listenFds(options: ListenFdsOptions = {}): ListenedFd[] {
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const { unsetEnvironment = true } = options;
  if (typeof unsetEnvironment !== 'boolean') throw invalidArgType('options.unsetEnvironment', 'of type boolean', unsetEnvironment);
  const env = options.env ?? process.env;
  try {
    const binding = options.binding ?? defaultBinding();
    const announced = announcedFds(env, binding);
    // Classify all, then set FD_CLOEXEC on all, then construct: the first
    // two steps may fail and own nothing; constructing cannot fail, so no
    // object is ever made that a later failure would have to undo.
    const kinds = announced.map((a) => classify(a.fd, binding));
    for (const { fd, flags } of announced) {
      const cloexec = flags | binding.constants.FD_CLOEXEC;
      if (cloexec !== flags) callSync('F_SETFD', { fd }, () => binding.setFdFlagsSync(fd, cloexec));
    }
    return announced.map(({ fd, name }, i) => adopt(fd, name, kinds[i]!, binding));
  } finally {
    if (unsetEnvironment) for (const v of VARIABLES) delete env[v];
  }
}

function decimal(variable: string, value: string): number {
  if (!/^[0-9]{1,10}$/.test(value)) throw invalidEnv(variable, value, 'is not a decimal number');
  return Number(value);
}

// What the variables announce, all checked; no fd is touched but by F_GETFD.
function announcedFds(env: NodeJS.ProcessEnv, binding: Binding): Announced[] {
  const pidText = env.LISTEN_PID;
  if (pidText === undefined) return [];
  const pid = decimal('LISTEN_PID', pidText);
  if (pid === 0) throw invalidEnv('LISTEN_PID', pidText, 'is not a process id');
  if (pid !== process.pid) return [];
  const countText = env.LISTEN_FDS;
  if (countText === undefined) return [];
  const count = decimal('LISTEN_FDS', countText);
  if (count > 0x7fffffff - LISTEN_FDS_START) throw invalidEnv('LISTEN_FDS', countText, 'is too large');

  const namesText = env.LISTEN_FDNAMES;
  // sd_listen_fds_with_names calls unnamed fds "unknown".
  const names = namesText === undefined ? new Array<string>(count).fill('unknown') : namesText === '' ? [] : namesText.split(':');
  if (names.length !== count) {
    throw invalidEnv('LISTEN_FDNAMES', namesText, `holds ${names.length} name(s) but LISTEN_FDS=${countText} announces ${count} fd(s)`);
  }
  return names.map((name, i) => {
    const fd = LISTEN_FDS_START + i;
    try {
      return { fd, name, flags: binding.getFdFlagsSync(fd) };
    } catch (err) {
      const code = (err as { code?: string }).code ?? String(err);
      throw invalidEnv('LISTEN_FDS', countText, `announces fd ${fd} (${JSON.stringify(name)}), which is not open here (F_GETFD: ${code})`, {
        fd,
        cause: err,
      });
    }
  });
}

// Sessions first: a session fd answers SESSION_GET_NAME; systemd itself
// tells them apart the same way. Then sealable shmem (memfds).
function classify(fd: number, binding: Binding): Kind {
  try {
    return { kind: 'session', session: probeSession(fd, binding) };
  } catch (err) {
    // Not a session; any other failure (the direction probe) is a real one.
    if ((err as { operation?: string }).operation !== 'LIVEUPDATE_SESSION_GET_NAME') throw err;
  }
  try {
    binding.getSealsSync(fd);
    return { kind: 'memfd' };
  } catch {
    return { kind: 'other' };
  }
}

function adopt(fd: number, name: string, kind: Kind, binding: Binding): ListenedFd {
  switch (kind.kind) {
    case 'session':
      return { name, kind: 'session', file: new Session(fd, new KnownSession(kind.session.name, kind.session.direction, binding)) };
    case 'memfd':
      return { name, kind: 'memfd', file: new Memfd(fd, { binding }, { label: `memfd ${fd} (${name})` }) };
    case 'other':
      return { name, kind: 'other', file: new OwnedFd(fd, { binding }, { label: `fd ${fd} (${name})` }) };
  }
}
