// listenFds: a real child process that inherits a memfd, a pipe and a
// socket at fds 3.. the way systemd passes them; malformed variables and
// session classification with the fake binding (sessions need the real
// LUO kernel, which the VM tier has).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { Memfd, OwnedFd, Session } from '../../lib/index';
import { listenFds } from '../../lib/systemd/index';
import { fakeBinding, nativeError } from './fake-binding';

const dist = path.resolve(__dirname, '../../dist');

describe('in a child that systemd-style inherits fds 3..', () => {
  test('a memfd is a Memfd, a pipe and a socket are OwnedFds, each close-on-exec, and the variables are gone', () => {
    const binding = defaultBinding();
    using m = Memfd.createSync('stored');
    fs.writeSync(m.fd, 'kept state');
    const [r, w] = binding.pipeSync().map((fd) => new OwnedFd(fd));
    const [a, b] = binding.unix.socketPair().map((fd) => new OwnedFd(fd));
    const child = `
      const fs = require('node:fs');
      const { listenFds } = require(${JSON.stringify(`${dist}/systemd/index.js`)});
      const b = require(${JSON.stringify(`${dist}/binding.js`)}).defaultBinding();
      Object.assign(process.env, { LISTEN_PID: String(process.pid), LISTEN_FDS: '3', LISTEN_FDNAMES: 'state:wakeup:conn', LISTEN_PIDFDID: '42' });
      // Node's startup already marks fds below 16 close-on-exec
      // (uv_disable_stdio_inheritance); systemd's fds can be any number, so
      // undo that here to see listenFds set it.
      for (const fd of [3, 4, 5]) b.setFdFlagsSync(fd, 0);
      const before = [3, 4, 5].map((fd) => b.getFdFlagsSync(fd) & b.constants.FD_CLOEXEC);
      const got = listenFds();
      const out = {
        before,
        got: got.map((g) => ({ name: g.name, kind: g.kind, type: g.file.constructor.name, fd: g.file.fd })),
        after: [3, 4, 5].map((fd) => b.getFdFlagsSync(fd) & b.constants.FD_CLOEXEC),
        env: Object.keys(process.env).filter((k) => k.startsWith('LISTEN_')),
        again: listenFds().length,
        content: fs.readFileSync('/proc/self/fd/3', 'utf8'),
        seals: got[0].file.getSealsSync(),
      };
      for (const g of got) g.file.close();
      console.log(JSON.stringify(out));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', child], { stdio: ['ignore', 'pipe', 'inherit', m.fd, r!.fd, a!.fd], encoding: 'utf8' }),
    );
    expect(out).toEqual({
      before: [0, 0, 0], // inheritable, as systemd passes them
      got: [
        { name: 'state', kind: 'memfd', type: 'Memfd', fd: 3 },
        { name: 'wakeup', kind: 'other', type: 'OwnedFd', fd: 4 },
        { name: 'conn', kind: 'other', type: 'OwnedFd', fd: 5 },
      ],
      after: [1, 1, 1],
      env: [],
      again: 0,
      content: 'kept state',
      seals: [],
    });
    for (const f of [r, w, a, b]) f!.close();
  });
});

describe('with the real binding in this process', () => {
  test('an announced fd that is not open throws ERR_INVALID_ENV and changes no fd', () => {
    const binding = defaultBinding();
    const open = fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => fd >= 3);
    const flags = () => open.map((fd) => { try { return binding.getFdFlagsSync(fd); } catch { return -1; } });
    const before = flags();
    const env = { LISTEN_PID: String(process.pid), LISTEN_FDS: '60000' };
    expect(() => listenFds({ env })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ENV', variable: 'LISTEN_FDS', message: expect.stringMatching(/^LISTEN_FDS="60000" announces fd \d+ .*not open here \(F_GETFD: EBADF\)/) }));
    expect(flags()).toEqual(before);
    expect(env).toEqual({});
  });

  test('variables for another process give [] and are removed (kept with unsetEnvironment: false)', () => {
    const env = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' };
    expect(listenFds({ env: { ...env }, unsetEnvironment: false })).toEqual([]);
    const kept = { ...env };
    listenFds({ env: kept, unsetEnvironment: false });
    expect(kept).toEqual(env);
    const unset = { ...env, LISTEN_PIDFDID: '7', OTHER: 'stays' };
    expect(listenFds({ env: unset })).toEqual([]);
    expect(unset).toEqual({ OTHER: 'stays' });
    expect(listenFds({ env: {} })).toEqual([]);
  });
});

describe('with a scripted kernel', () => {
  const pid = String(process.pid);
  const ebadf = () => { throw nativeError('EBADF', 9, 'fcntl'); };
  const enotty = () => { throw nativeError('ENOTTY', 25, 'ioctl'); };

  function kernel(overrides: Parameters<typeof fakeBinding>[0] = {}) {
    return fakeBinding({
      // fd 3: an incoming session, fd 4: a memfd, fd 5: something else
      LIVEUPDATE_SESSION_GET_NAME: ([fd]) => (fd === 3 ? { name: 'luo-demo.serv-f7b8a692c3ea413a9a50d592' } : enotty()),
      LIVEUPDATE_SESSION_PRESERVE_FD: () => { throw nativeError('EINVAL', 22, 'ioctl'); },
      getSeals: ([fd]) => (fd === 4 ? 0 : (() => { throw nativeError('EINVAL', 22, 'fcntl'); })()),
      getFdFlags: ([fd]) => ((fd as number) < 6 ? 0 : ebadf()),
      ...overrides,
    });
  }
  const mutating = (calls: { call: string }[]) => calls.filter((c) => c.call === 'setFdFlags' || c.call === 'close');

  test('a session is a Session with its kernel name and direction; FDNAMEs stay the names', () => {
    const { binding, calls } = kernel();
    const env = { LISTEN_PID: pid, LISTEN_FDS: '3', LISTEN_FDNAMES: 'demo:state:sock' };
    const got = listenFds({ env, binding });
    expect(got.map((g) => [g.name, g.kind, g.file.fd])).toEqual([['demo', 'session', 3], ['state', 'memfd', 4], ['sock', 'other', 5]]);
    expect(got[0]!.file).toBeInstanceOf(Session);
    expect(got[0]!.file).toMatchObject({ name: 'luo-demo.serv-f7b8a692c3ea413a9a50d592', direction: 'incoming' });
    expect(got[1]!.file).toBeInstanceOf(Memfd);
    expect(calls.filter((c) => c.call === 'setFdFlags').map((c) => c.args)).toEqual([[3, 1], [4, 1], [5, 1]]);
    for (const g of got) g.file.close();
  });

  test('without LISTEN_FDNAMES every fd is "unknown"', () => {
    const { binding } = kernel();
    const got = listenFds({ env: { LISTEN_PID: pid, LISTEN_FDS: '2' }, binding });
    expect(got.map((g) => g.name)).toEqual(['unknown', 'unknown']);
    for (const g of got) g.file.close();
  });

  test.each([
    ['LISTEN_PID', { LISTEN_PID: '12x', LISTEN_FDS: '1' }, /not a decimal number/],
    ['LISTEN_PID', { LISTEN_PID: '', LISTEN_FDS: '1' }, /not a decimal number/],
    ['LISTEN_PID', { LISTEN_PID: '0', LISTEN_FDS: '1' }, /not a process id/],
    ['LISTEN_FDS', { LISTEN_PID: pid, LISTEN_FDS: 'two' }, /not a decimal number/],
    ['LISTEN_FDS', { LISTEN_PID: pid, LISTEN_FDS: '-1' }, /not a decimal number/],
    ['LISTEN_FDS', { LISTEN_PID: pid, LISTEN_FDS: ' 1' }, /not a decimal number/],
    ['LISTEN_FDNAMES', { LISTEN_PID: pid, LISTEN_FDS: '2', LISTEN_FDNAMES: 'only-one' }, /holds 1 name\(s\) but LISTEN_FDS=2/],
    ['LISTEN_FDNAMES', { LISTEN_PID: pid, LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, /holds 2 name\(s\)/],
    ['LISTEN_FDS', { LISTEN_PID: pid, LISTEN_FDS: '4', LISTEN_FDNAMES: 'a:b:c:d' }, /announces fd 6 \("d"\), which is not open here \(F_GETFD: EBADF\)/],
  ])('a malformed %s throws ERR_INVALID_ENV naming it, adopting nothing', (variable, vars, message) => {
    const { binding, calls } = kernel();
    const env: NodeJS.ProcessEnv = { ...vars };
    expect(() => listenFds({ env, binding })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ENV', variable, message: expect.stringMatching(message) }));
    expect(mutating(calls)).toEqual([]);
    expect(calls.some((c) => c.call.startsWith('LIVEUPDATE_'))).toBe(false); // nothing classified either
    expect(env).toEqual({}); // removed on every outcome, as sd_listen_fds does
  });

  test('a classification failing at the second fd leaves the first unowned and every fd untouched', () => {
    const { binding, calls } = kernel({
      LIVEUPDATE_SESSION_GET_NAME: ([fd]) => ({ name: `s${fd}` }),
      LIVEUPDATE_SESSION_PRESERVE_FD: ([fd]) => { throw fd === 4 ? nativeError('EIO', 5, 'ioctl') : nativeError('EBADF', 9, 'ioctl'); },
    });
    const env = { LISTEN_PID: pid, LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' };
    expect(() => listenFds({ env, binding, unsetEnvironment: false })).toThrow(expect.objectContaining({ code: 'EIO', operation: 'LIVEUPDATE_SESSION_PRESERVE_FD', fd: 4 }));
    expect(mutating(calls)).toEqual([]);
    expect(env).toEqual({ LISTEN_PID: pid, LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' });
  });

  test('fds already close-on-exec are left as they are', () => {
    const { binding, calls } = kernel({ getFdFlags: () => 1 });
    const got = listenFds({ env: { LISTEN_PID: pid, LISTEN_FDS: '1' }, binding });
    expect(calls.filter((c) => c.call === 'setFdFlags')).toEqual([]);
    got[0]!.file.close();
  });

  test('bad options are refused', () => {
    expect(() => listenFds({ unsetEnvironment: 'no' as unknown as boolean, env: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
