// Failed system calls throw errors shaped like Node's own (code, negative
// errno, syscall, `CODE: …` message) plus the uAPI operation and a meaning.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LiveUpdate, LiveUpdateError, Memfd, Session, kexec } from '../../lib/index';
import { defaultBinding } from '../../lib/binding';
import { fromNative } from '../../lib/errors';
import { fakeBinding, nativeError } from './fake-binding';

describe('opening the device', () => {
  test('a missing device is ENOENT and says what LUO needs', () => {
    const err = catchError(() => LiveUpdate.openSync('/nonexistent/liveupdate'));
    expect(err).toBeInstanceOf(LiveUpdateError);
    expect(err).toMatchObject({
      code: 'ENOENT',
      errno: -2,
      syscall: 'open',
      operation: 'LIVEUPDATE_OPEN',
      path: '/nonexistent/liveupdate',
    });
    expect(err.message).toMatch(/^ENOENT: \/nonexistent\/liveupdate does not exist: .*CONFIG_LIVEUPDATE.*liveupdate=on, open '\/nonexistent\/liveupdate'$/);
  });

  test('the Promise form rejects with the same error', async () => {
    await expect(LiveUpdate.open('/nonexistent/liveupdate')).rejects.toMatchObject({ code: 'ENOENT', errno: -2, operation: 'LIVEUPDATE_OPEN' });
  });

  describe('EBUSY names the process that holds the device', () => {
    const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-proc-'));
    afterAll(() => fs.rmSync(proc, { recursive: true, force: true }));
    fs.mkdirSync(path.join(proc, '4242', 'fd'), { recursive: true });
    fs.symlinkSync('/dev/liveupdate', path.join(proc, '4242', 'fd', '3'));
    fs.writeFileSync(path.join(proc, '4242', 'comm'), 'luod\n');
    fs.mkdirSync(path.join(proc, '77', 'fd'), { recursive: true });
    fs.symlinkSync('/dev/null', path.join(proc, '77', 'fd', '0'));

    test('in the message and as err.holder', () => {
      const { binding } = fakeBinding({ open: () => { throw nativeError('EBUSY', 16, 'open'); } });
      const err = catchError(() => LiveUpdate.openSync('/dev/liveupdate', { binding, procRoot: proc }));
      expect(err).toMatchObject({ code: 'EBUSY', errno: -16, syscall: 'open', holder: { pid: 4242, command: 'luod' } });
      expect(err.message).toBe("EBUSY: /dev/liveupdate is exclusive and another process has it open (held by pid 4242 (luod)), open '/dev/liveupdate'");
    });
  });
});

describe('ioctls aimed at something that is not LUO', () => {
  test('a memfd adopted as a session is ENOTTY, and the fd stays the caller\'s', () => {
    using m = Memfd.createSync('not-a-session');
    const err = catchError(() => new Session(m.fd));
    expect(err).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl', operation: 'LIVEUPDATE_SESSION_GET_NAME', fd: m.fd });
    expect(err.message).toBe(`ENOTTY: fd ${m.fd} is not a LUO session, ioctl LIVEUPDATE_SESSION_GET_NAME`);
    expect(() => fs.fstatSync(m.fd)).not.toThrow();
  });

  test.each([
    ['a memfd', () => Memfd.createSync('x').detach()],
    ['a pipe', () => pipeFd()],
    ['/dev/null', () => fs.openSync('/dev/null', 'r')],
  ])('device ioctls on %s fail with ENOTTY or EINVAL', async (_, open) => {
    const fd = open();
    try {
      const b = defaultBinding();
      for (const op of ['LIVEUPDATE_IOCTL_CREATE_SESSION', 'LIVEUPDATE_SESSION_FINISH'] as const) {
        const err = catchError(() => b.ioctlSync(fd, b.ioctlLayout[op].index, 'x'));
        expect(['ENOTTY', 'EINVAL']).toContain(err.code);
        expect(err).toMatchObject({ syscall: 'ioctl', operation: op });
        await expect(b.ioctl(fd, b.ioctlLayout[op].index, 'x')).rejects.toMatchObject({ code: err.code, operation: op });
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a closed fd number is EBADF', () => {
    const fd = fs.openSync('/dev/null', 'r');
    fs.closeSync(fd);
    expect(catchError(() => defaultBinding().ioctlSync(fd, defaultBinding().ioctlLayout.LIVEUPDATE_SESSION_FINISH.index))).toMatchObject({ code: 'EBADF', errno: -9 });
  });
});

describe('meanings per operation', () => {
  const cases = [
    ['LIVEUPDATE_IOCTL_CREATE_SESSION', 'EEXIST', 17, /a session named "s" already exists/],
    ['LIVEUPDATE_IOCTL_RETRIEVE_SESSION', 'ENOENT', 2, /no session named "s" was handed over by the previous kernel/],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 'EBUSY', 16, /fd 5 is already preserved \(a file can be in one session only\)/],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 'EEXIST', 17, /token 9 is already used in session "s"/],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 'ENOENT', 2, /cannot preserve \(today: memfds/],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 'EOPNOTSUPP', 95, /has seals this kernel cannot preserve/],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 'E2BIG', 7, /kernel too old/],
  ] as const;
  test.each(cases)('%s %s', (operation, code, errno, meaning) => {
    const err = fromNative(nativeError(code, errno, 'ioctl'), operation, { session: 's', fd: 5, token: 9n }) as LiveUpdateError;
    expect(err).toBeInstanceOf(LiveUpdateError);
    expect(err.code).toBe(code);
    expect(err.errno).toBe(-errno);
    expect(err.message).toMatch(new RegExp(`^${code}: `));
    expect(err.message).toMatch(meaning);
    expect(err.message.endsWith(`, ioctl ${operation}`)).toBe(true);
  });

  test('errnos libuv has no name for keep the C library name (ENOEXEC from kexec_file_load)', () => {
    expect(new LiveUpdateError(-8, 'kexec_file_load', 'KEXEC_FILE_LOAD').code).toBe('ENOEXEC');
    const err = new LiveUpdateError(-8, 'kexec_file_load', 'KEXEC_FILE_LOAD', { path: '/boot/x' }, { code: 'ENOEXEC', description: 'Exec format error' });
    expect(err.message).toBe("ENOEXEC: the file is not a kernel image this kernel can boot, kexec_file_load '/boot/x'");
  });
});

describe('kexec', () => {
  test('loading needs privileges the test runner may lack, and says so', () => {
    if (process.getuid?.() === 0) return; // as root the call reaches the kernel; the VM tier covers it
    expect(catchError(() => kexec.loadSync({ kernel: '/etc/hostname', cmdline: '' }))).toMatchObject({ code: 'EPERM', operation: 'KEXEC_FILE_LOAD' });
  });

  test('a missing kernel file fails before the syscall, as fs does', () => {
    expect(catchError(() => kexec.loadSync({ kernel: '/nonexistent/bzImage' }))).toMatchObject({ code: 'ENOENT', syscall: 'open' });
  });
});

function catchError(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to throw');
}

function pipeFd(): number {
  // A FIFO opened read-write never blocks and is a pipe to the kernel.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-fifo-'));
  const fifo = path.join(dir, 'p');
  require('node:child_process').execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, 'r+');
  fs.rmSync(dir, { recursive: true });
  return fd;
}
