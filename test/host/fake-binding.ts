// A stand-in for the addon, handed to the library through its `binding`
// option: records every call, and answers with what the test scripted.
import type { Binding, IoctlOperation } from '../../types/binding';
import { type IoctlArgs, type IoctlResult, namedIoctl } from './named-ioctl';

export interface Recorded {
  call: string;
  args: unknown[];
}

/** A native-shaped system error, as the addon throws it. */
export function nativeError(code: string, errno: number, syscall: string): Error {
  return Object.assign(new Error(`${code}: native, ${syscall}`), { code, errno: -errno, syscall });
}

type Answerable = IoctlOperation | 'open' | 'close' | 'getSeals' | 'getFdFlags' | 'setFdFlags';

export function fakeBinding(answers: Partial<Record<Answerable, (args: unknown[]) => unknown>> = {}) {
  const calls: Recorded[] = [];
  let nextFd = 100;
  const answer = (name: Answerable, args: unknown[], fallback: () => unknown) => {
    calls.push({ call: name, args });
    const fn = answers[name];
    return fn ? fn(args) : fallback();
  };
  // fds that open() returned: GET_NAME there is the device probe, answered as the kernel does.
  const devices = new Set<number>();
  const ioctlSync = (fd: number, op: IoctlOperation, args: IoctlArgs): IoctlResult =>
    answer(op, [fd, args], () => {
      if (op.endsWith('SESSION') || op.endsWith('RETRIEVE_FD')) return { fd: nextFd++ };
      if (!op.endsWith('GET_NAME')) return {};
      if (devices.has(fd)) throw nativeError('EINVAL', 22, 'ioctl');
      return { name: 'fake' };
    }) as IoctlResult;
  const binding: Binding = {
    ...namedIoctl(ioctlSync),
    openSync: (path, flags) => {
      const fd = answer('open', [path, flags], () => nextFd++) as number;
      devices.add(fd);
      return fd;
    },
    open: async (path, flags) => binding.openSync(path, flags),
    closeSync: (fd) => void answer('close', [fd], () => undefined),
    close: async (fd) => binding.closeSync(fd),
    memfdCreateSync: () => nextFd++,
    memfdCreate: async () => nextFd++,
    addSealsSync: () => {},
    addSeals: async () => {},
    getSealsSync: (fd) => answer('getSeals', [fd], () => 0) as number,
    getSeals: async (fd) => binding.getSealsSync(fd),
    getFdFlagsSync: (fd) => answer('getFdFlags', [fd], () => 0) as number,
    getFdFlags: async (fd) => binding.getFdFlagsSync(fd),
    setFdFlagsSync: (fd, flags) => void answer('setFdFlags', [fd, flags], () => undefined),
    setFdFlags: async (fd, flags) => binding.setFdFlagsSync(fd, flags),
    pipeSync: () => [nextFd++, nextFd++],
    pipe: async () => binding.pipeSync(),
    kexecFileLoadSync: (...args) => void calls.push({ call: 'kexecFileLoad', args }),
    kexecFileLoad: async (...args) => void calls.push({ call: 'kexecFileLoad', args }),
    rebootKexecSync: () => {
      calls.push({ call: 'rebootKexec', args: [] });
      throw nativeError('EINVAL', 22, 'reboot');
    },
    rebootKexec: async () => binding.rebootKexecSync(),
    // Mapping is tested against the real addon (test/host/memfd-mapping.test.ts).
    mmapSync: (...args) => {
      calls.push({ call: 'mmap', args });
      throw nativeError('ENODEV', 19, 'mmap');
    },
    munmapSync: (...args) => void calls.push({ call: 'munmap', args }),
    pageSize: 4096,
    // fd passing is tested against the real addon; dup stands in for the copies Promise forms take.
    unix: { dup: (fd: number) => (calls.push({ call: 'dup', args: [fd] }), nextFd++) } as unknown as Binding['unix'],
    constants: {
      O_RDONLY: 0, O_RDWR: 2, FD_CLOEXEC: 1, MFD_ALLOW_SEALING: 2,
      F_SEAL_SEAL: 1, F_SEAL_SHRINK: 2, F_SEAL_GROW: 4, F_SEAL_WRITE: 8, F_SEAL_FUTURE_WRITE: 16, F_SEAL_EXEC: 32,
      KEXEC_FILE_UNLOAD: 1, KEXEC_FILE_NO_INITRAMFS: 4,
    },
  };
  return { binding, calls };
}
