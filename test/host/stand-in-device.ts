// A stand-in for /dev/liveupdate inside one process, for running the broker
// on the host: the real addon for everything but opening the device and
// the LUO ioctls, which are answered from a table. A session's fd is a
// real memfd, so it can be sent over sockets, duplicated and closed like
// the real thing; the table knows it by inode. Never a substitute for the
// VM tier: the kernel's own answers are tested there.
import * as fs from 'node:fs';
import { defaultBinding } from '../../lib/binding';
import type { Kexec } from '../../lib/kexec';
import type { Binding, IoctlOperation } from '../../types/binding';
import { type IoctlArgs, type IoctlResult, namedIoctl } from './named-ioctl';
import { nativeError } from './fake-binding';

interface StandInSession {
  name: string;
  direction: 'outgoing' | 'incoming';
  files: Map<bigint, number>;
}

const ERRNO = { EEXIST: 17, ENOENT: 2, ENOTTY: 25, EINVAL: 22, EBADF: 9 } as const;
const fail = (code: keyof typeof ERRNO) => nativeError(code, ERRNO[code], 'ioctl');

/**
 * @param incoming sessions "handed over by the previous kernel": name to
 *   token to contents.
 */
export function standInDevice(incoming: Record<string, Record<string, string>> = {}) {
  const real = defaultBinding();
  const sessions = new Map<number, StandInSession>(); // by inode
  const outgoingNames = new Set<string>();
  const handedOver = new Map(Object.entries(incoming));
  const ioctlCalls: IoctlOperation[] = [];

  const session = (fd: number) => sessions.get(fs.fstatSync(fd).ino);
  const memfd = (name: string, contents = '') => {
    const fd = real.memfdCreateSync(name, 0);
    fs.writeSync(fd, contents);
    return fd;
  };
  const newSession = (name: string, direction: StandInSession['direction'], files = new Map<bigint, number>()) => {
    const fd = memfd(`luo_session ${name}`);
    sessions.set(fs.fstatSync(fd).ino, { name, direction, files });
    return fd;
  };

  const devices = new Set<number>();
  const openDevice = () => {
    const fd = real.openSync('/dev/null', real.constants.O_RDONLY);
    devices.add(fd);
    return fd;
  };

  const ioctlSync = (fd: number, op: IoctlOperation, args: IoctlArgs): IoctlResult => {
    ioctlCalls.push(op);
    // The device range-checks command numbers: a session's command is EINVAL there (the open probe).
    if (devices.has(fd) && op.startsWith('LIVEUPDATE_SESSION_')) throw fail('EINVAL');
    const s = op.startsWith('LIVEUPDATE_SESSION_') ? session(fd) : undefined;
    switch (op) {
      case 'LIVEUPDATE_IOCTL_CREATE_SESSION':
        if (outgoingNames.has(args.name!)) throw fail('EEXIST');
        outgoingNames.add(args.name!);
        return { fd: newSession(args.name!, 'outgoing') };
      case 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION': {
        const files = handedOver.get(args.name!);
        if (!files) throw fail('ENOENT');
        handedOver.delete(args.name!);
        return { fd: newSession(args.name!, 'incoming', new Map(Object.entries(files).map(([t, text]) => [BigInt(t), memfd('kept', text)]))) };
      }
      case 'LIVEUPDATE_SESSION_GET_NAME':
        if (!s) throw fail('ENOTTY');
        return { name: s.name };
      case 'LIVEUPDATE_SESSION_PRESERVE_FD':
        if (!s) throw fail('ENOTTY');
        if (s.direction !== 'outgoing') throw fail('EINVAL');
        if (args.fd! < 0) throw fail('EBADF');
        if (s.files.has(args.token!)) throw fail('EEXIST');
        s.files.set(args.token!, real.unix.dup(args.fd!));
        return {};
      case 'LIVEUPDATE_SESSION_RETRIEVE_FD': {
        if (!s) throw fail('ENOTTY');
        if (s.direction !== 'incoming') throw fail('EINVAL');
        const kept = s.files.get(args.token!);
        if (kept === undefined) throw fail('ENOENT');
        s.files.delete(args.token!);
        return { fd: kept };
      }
      case 'LIVEUPDATE_SESSION_FINISH':
        if (!s) throw fail('ENOTTY');
        if (s.direction !== 'incoming') throw fail('EINVAL');
        return {};
      default:
        throw fail('ENOTTY');
    }
  };

  const binding: Binding = {
    ...real,
    ...namedIoctl(ioctlSync),
    openSync: openDevice,
    open: async () => openDevice(),
    closeSync: (fd) => {
      devices.delete(fd);
      real.closeSync(fd);
    },
    close: async (fd) => {
      devices.delete(fd);
      await real.close(fd);
    },
  };
  return { binding, ioctlCalls, sessionNamed: (name: string) => [...sessions.values()].find((s) => s.name === name) };
}

/** A kexec for brokers on the host: loads nothing, and a reboot fails (the broker logs it and serves on). */
export const noReboot: Kexec = {
  load: async () => {},
  loadSync: () => {},
  unload: async () => {},
  unloadSync: () => {},
  rebootSync: () => {
    throw new Error('no reboot on the host');
  },
  reboot: async () => {
    throw new Error('no reboot on the host');
  },
};
