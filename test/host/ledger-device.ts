// A fake LUO kernel that keeps a ledger of fd numbers, for fuzzing call
// orders without a device: numbers are handed out lowest-free first and
// reused as soon as they are closed, as the kernel does, so a library that
// closed a number twice, or let a worker use a number after it was closed,
// hits another file. The ledger notices both:
// - a close of a number that is not open is a violation (with recycling,
//   a double close surfaces here once every object has been closed);
// - a Promise call remembers which file its numbers named when it was made,
//   and checks they still name that file when its "worker" runs a moment
//   later (setImmediate): otherwise a recycled number was used.
// The LUO rules are the kernel's (include/uapi/linux/liveupdate.h), reduced
// to what the library's state checks depend on.
import { fakeBinding, nativeError } from './fake-binding';
import type { Binding, IoctlOperation } from '../../types/binding';
import { type IoctlArgs, type IoctlResult, namedIoctl } from './named-ioctl';

interface SessionState {
  name: string;
  direction: 'outgoing' | 'incoming';
  files: Map<bigint, File>;
}

interface File {
  kind: 'device' | 'session' | 'memfd';
  session?: SessionState;
  seals: number;
  /** Open fd numbers naming this file. */
  refs: number;
  preserved?: boolean;
}

/** One open fd number: a new one per open, so a reused number is told apart. */
interface Entry {
  file: File;
}

const ERRNO = { EBADF: 9, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOENT: 2, ENOTTY: 25, EPERM: 1 } as const;
const fail = (code: keyof typeof ERRNO, syscall = 'ioctl') => nativeError(code, ERRNO[code], syscall);

export const FIRST_FD = 1000;

/** @param handedOver sessions "kept by the previous kernel": name to tokens. */
export function ledgerDevice(handedOver: Record<string, bigint[]> = {}) {
  const { binding: fake } = fakeBinding();
  const table = new Map<number, Entry>();
  const violations: string[] = [];
  const outgoingNames = new Set<string>();
  const waiting = new Map(Object.entries(handedOver));
  const retrieved = new Set<string>();
  const C = fake.constants;

  const alloc = (file: File): number => {
    let n = FIRST_FD;
    while (table.has(n)) n++;
    table.set(n, { file });
    file.refs++;
    return n;
  };
  const newFile = (kind: File['kind'], session?: SessionState): File => ({ kind, session, seals: 0, refs: 0 });
  const lookup = (fd: number, syscall = 'ioctl'): File => {
    const e = table.get(fd);
    if (!e) throw fail('EBADF', syscall);
    return e.file;
  };
  const closeNumber = (fd: number): void => {
    const e = table.get(fd);
    if (!e) {
      violations.push(`close(${fd}): the number is not open (closed twice?)`);
      throw fail('EBADF', 'close');
    }
    table.delete(fd);
    if (--e.file.refs === 0 && e.file.session?.direction === 'outgoing') outgoingNames.delete(e.file.session.name);
  };

  const ioctlSync = (fd: number, op: IoctlOperation, args: IoctlArgs): IoctlResult => {
    const file = lookup(fd);
    if (file.kind === 'memfd') throw fail('ENOTTY');
    // The device and a session each range-check the command number: the other's commands are EINVAL.
    if (op.startsWith('LIVEUPDATE_IOCTL_') ? file.kind !== 'device' : file.kind !== 'session') throw fail('EINVAL');
    const s = file.session!;
    switch (op) {
      case 'LIVEUPDATE_IOCTL_CREATE_SESSION':
        if (outgoingNames.has(args.name!)) throw fail('EEXIST');
        outgoingNames.add(args.name!);
        return { fd: alloc(newFile('session', { name: args.name!, direction: 'outgoing', files: new Map() })) };
      case 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION': {
        if (retrieved.has(args.name!)) throw fail('EINVAL');
        const tokens = waiting.get(args.name!);
        if (!tokens) throw fail('ENOENT');
        waiting.delete(args.name!);
        retrieved.add(args.name!);
        const files = new Map(tokens.map((t) => [t, newFile('memfd')] as const));
        return { fd: alloc(newFile('session', { name: args.name!, direction: 'incoming', files })) };
      }
      case 'LIVEUPDATE_SESSION_GET_NAME':
        return { name: s.name };
      case 'LIVEUPDATE_SESSION_PRESERVE_FD': {
        if (s.direction !== 'outgoing') throw fail('EINVAL');
        const target = lookup(args.fd!);
        if (target.kind !== 'memfd') throw fail('ENOENT');
        if (s.files.has(args.token!)) throw fail('EEXIST');
        if (target.preserved) throw fail('EBUSY');
        target.preserved = true;
        s.files.set(args.token!, target);
        return {};
      }
      case 'LIVEUPDATE_SESSION_RETRIEVE_FD': {
        if (s.direction !== 'incoming') throw fail('EINVAL');
        const kept = s.files.get(args.token!);
        if (!kept) throw fail('ENOENT');
        s.files.delete(args.token!);
        return { fd: alloc(kept) };
      }
      case 'LIVEUPDATE_SESSION_FINISH':
        if (s.direction !== 'incoming') throw fail('EINVAL');
        return {};
    }
    throw fail('ENOTTY');
  };

  // A Promise call: the numbers are read now, on the "JS thread"; the work
  // runs a moment later, as on a libuv worker, and must find the same files.
  const later = async <T>(fds: number[], what: string, work: () => T): Promise<T> => {
    const named = fds.map((n) => table.get(n));
    await new Promise((resolve) => setImmediate(resolve));
    fds.forEach((n, i) => {
      if (named[i] && table.get(n) !== named[i]) violations.push(`${what}: fd ${n} was closed or reused while the call was in flight`);
    });
    return work();
  };

  const sealsOf = (fd: number) => {
    const f = lookup(fd, 'fcntl');
    if (f.kind !== 'memfd') throw fail('EINVAL', 'fcntl');
    return f;
  };
  const addSealsSync = (fd: number, seals: number) => {
    const f = sealsOf(fd);
    if (f.seals & C.F_SEAL_SEAL) throw fail('EPERM', 'fcntl');
    f.seals |= seals;
  };

  const binding: Binding = {
    ...fake,
    ...namedIoctl(ioctlSync, (fd, op, args) => later(args.fd !== undefined ? [fd, args.fd] : [fd], op, () => ioctlSync(fd, op, args))),
    openSync: () => alloc(newFile('device')),
    open: async () => alloc(newFile('device')),
    closeSync: closeNumber,
    close: async (fd) => closeNumber(fd),
    memfdCreateSync: () => alloc(newFile('memfd')),
    memfdCreate: async () => alloc(newFile('memfd')),
    getSealsSync: (fd) => sealsOf(fd).seals,
    getSeals: (fd) => later([fd], 'getSeals', () => sealsOf(fd).seals),
    addSealsSync,
    addSeals: (fd, seals) => later([fd], 'addSeals', () => addSealsSync(fd, seals)),
    unix: { ...fake.unix, dup: (fd: number) => alloc(lookup(fd, 'fcntl')) } as Binding['unix'],
  };

  return {
    binding,
    violations,
    /** Numbers still open, with what they are. */
    open: () => [...table].map(([n, e]) => `${n}:${e.file.kind}${e.file.session ? ` ${e.file.session.direction} ${JSON.stringify(e.file.session.name)}` : ''}`),
  };
}
