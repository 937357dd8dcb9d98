// sd_notify against a real datagram receiver in another process (python3,
// see notify-receiver.ts): the exact bytes, the credentials, the fds, path
// and abstract sockets, the fd store's names, and the barrier.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { poolGate } from '../../lib/pool-gate';
import { Memfd, OwnedFd, Session } from '../../lib/index';
import { notify, notifyBarrier, notifySync, removeStoredFds, storeFds, storeFdsSync } from '../../lib/systemd/index';
import { fakeBinding } from './fake-binding';
import { type Receiver, startReceiver } from './notify-receiver';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-notify-'));
let counter = 0;
const receivers: Receiver[] = [];
afterEach(() => receivers.splice(0).forEach((r) => r.close()));

async function receiver(kind: 'path' | 'abstract' = 'path', mode: 'close' | 'hold' = 'close') {
  const address = kind === 'path' ? path.join(dir, `notify-${++counter}`) : `@liveupdate-test-${process.pid}-${++counter}`;
  const r = await startReceiver(address, mode);
  receivers.push(r);
  return { r, env: { NOTIFY_SOCKET: address } };
}

const self = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };

function pipe(): [OwnedFd, OwnedFd] {
  const [r, w] = defaultBinding().pipeSync();
  return [new OwnedFd(r), new OwnedFd(w)];
}

describe('notify', () => {
  test('sends the exact bytes with this process as SCM_CREDENTIALS to a path socket', async () => {
    const { r, env } = await receiver('path');
    expect(notifySync({ READY: 1, STATUS: 'serving 2 clients' }, { env })).toBe(true);
    expect(await r.next()).toEqual({ payload: 'READY=1\nSTATUS=serving 2 clients\n', creds: self, fds: [], flags: 0 });
    expect(await notify('WATCHDOG=1', { env })).toBe(true);
    expect(await r.next()).toMatchObject({ payload: 'WATCHDOG=1', creds: self });
  });

  test('carries fds (SCM_RIGHTS) to an @abstract socket; the sender keeps its own', async () => {
    const { r, env } = await receiver('abstract');
    using m = Memfd.createSync('state');
    fs.writeSync(m.fd, 'guest ram');
    const [rd, wr] = pipe();
    expect(await notify({ FDSTORE: 1, FDNAME: 'x' }, { env, fds: [m, wr.fd] })).toBe(true);
    const got = await r.next();
    expect(got.creds).toEqual(self);
    expect(got.fds).toEqual([
      { target: '/memfd:state (deleted)', content: 'guest ram' },
      { target: expect.stringMatching(/^pipe:\[\d+\]$/), content: null },
    ]);
    expect(m.closed).toBe(false);
    expect(fs.readFileSync(`/proc/self/fd/${m.fd}`, 'utf8')).toBe('guest ram');
    rd.close();
    wr.close();
  });

  // A send can block while the manager's queue is full; the library's other
  // Promise calls must not wait behind it (lib/pool-gate.ts), nor it behind them.
  test('does not take a turn on the pool gate: it goes out while every turn is taken', async () => {
    const { r, env } = await receiver('path');
    const gate = poolGate(defaultBinding());
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const turns = Array.from({ length: gate.limit }, () => gate.run(() => held));
    expect(await notify('STATUS=busy', { env })).toBe(true);
    expect(await r.next()).toMatchObject({ payload: 'STATUS=busy' });
    release();
    await Promise.all(turns);
  });

  test('returns false and sends nothing when NOTIFY_SOCKET is unset, yet still checks its arguments', async () => {
    expect(notifySync('READY=1', { env: {} })).toBe(false);
    expect(await notify('READY=1', { env: { NOTIFY_SOCKET: '' } })).toBe(false);
    expect(await storeFds('state', [0], { env: {} })).toBe(false);
    expect(await removeStoredFds('state', { env: {} })).toBe(false);
    expect(() => notifySync('', { env: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => notifySync({ STATUS: 'a\nREADY=1' }, { env: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    await expect(storeFds('a:b', [0], { env: {} })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  test.each([
    ['a path nothing is bound at', () => path.join(dir, 'nobody-here'), 'ENOENT'],
    ['an abstract name nothing is bound to', () => `@liveupdate-nobody-${process.pid}`, 'ECONNREFUSED'],
  ])('NOTIFY_SOCKET at %s fails clearly', async (_what, address, code) => {
    const env = { NOTIFY_SOCKET: address() };
    const expected = { code, syscall: 'connect', operation: 'SD_NOTIFY', path: env.NOTIFY_SOCKET, message: expect.stringContaining('NOTIFY_SOCKET=') };
    expect(() => notifySync('READY=1', { env })).toThrow(expect.objectContaining(expected));
    await expect(notify('READY=1', { env })).rejects.toMatchObject(expected);
  });

  test.each([
    ['vsock:2:1234', /AF_VSOCK/],
    ['relative/path', /neither an absolute path/],
    [`/${'x'.repeat(107)}`, /1\.\.107 bytes/],
  ])('NOTIFY_SOCKET=%s is refused with ERR_INVALID_ENV', (value, message) => {
    expect(() => notifySync('READY=1', { env: { NOTIFY_SOCKET: value } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ENV', variable: 'NOTIFY_SOCKET', value, message: expect.stringMatching(message) }),
    );
  });
});

describe('storeFds and removeStoredFds', () => {
  test('FDSTORE=1, FDNAME and FDPOLL=0 with the fds; FDPOLL left to systemd with { poll: true }', async () => {
    const { r, env } = await receiver();
    using m = Memfd.createSync('kept');
    expect(await storeFds('state', [m], { env })).toBe(true);
    expect(await r.next()).toMatchObject({ payload: 'FDSTORE=1\nFDNAME=state\nFDPOLL=0\n', creds: self, fds: [{ target: '/memfd:kept (deleted)' }] });
    expect(storeFdsSync('polled', [m.fd], { env, poll: true })).toBe(true);
    expect(await r.next()).toMatchObject({ payload: 'FDSTORE=1\nFDNAME=polled\n', fds: [{ target: '/memfd:kept (deleted)' }] });
    expect(await removeStoredFds('state', { env })).toBe(true);
    expect(await r.next()).toEqual({ payload: 'FDSTOREREMOVE=1\nFDNAME=state\n', creds: self, fds: [], flags: 0 });
  });

  test.each([
    ['with a colon', 'a:b'],
    ['non-ASCII', 'état'],
    ['with a control character', 'a\tb'],
    ['empty', ''],
    ['too long', 'x'.repeat(256)],
  ])('an FDNAME %s is refused with ERR_INVALID_ARG_VALUE and nothing is sent', async (_what, name) => {
    const { r, env } = await receiver();
    using m = Memfd.createSync('never-sent');
    await expect(storeFds(name, [m], { env })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(removeStoredFds(name, { env })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(() => storeFdsSync(name, [m], { env })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    // Datagrams arrive in order: the next one seen is this marker.
    await notify('MARKER=1', { env });
    expect((await r.next()).payload).toBe('MARKER=1');
  });

  test('more fds than the store could ever hold ($FDSTORE) are refused with ENOSPC, sending nothing', async () => {
    const env = { NOTIFY_SOCKET: '/nonexistent/notify', FDSTORE: '1' }; // a send would fail with ENOENT
    await expect(storeFds('two', [0, 1], { env })).rejects.toMatchObject({ code: 'ENOSPC', max: 1, message: expect.stringMatching(/FileDescriptorStoreMax=1/) });
    expect(() => storeFdsSync('two', [0, 1], { env })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });

  test('a 255-character FDNAME is fine', async () => {
    const { r, env } = await receiver();
    using m = Memfd.createSync('long-name');
    expect(await storeFds('n'.repeat(255), [m], { env })).toBe(true);
    expect((await r.next()).payload).toBe(`FDSTORE=1\nFDNAME=${'n'.repeat(255)}\nFDPOLL=0\n`);
  });

  test('the Promise form holds its own copies: the caller may close its fds right after calling', async () => {
    const { r, env } = await receiver();
    const m = Memfd.createSync('original');
    fs.writeSync(m.fd, 'original');
    const raw = Memfd.createSync('raw');
    fs.writeSync(raw.fd, 'raw number');
    const storing = storeFds('state', [m, raw.fd], { env });
    m.close();
    raw.close();
    using impostor = Memfd.createSync('impostor'); // likely takes a closed number
    fs.writeSync(impostor.fd, 'impostor');
    expect(await storing).toBe(true);
    expect((await r.next()).fds.map((f) => f.content)).toEqual(['original', 'raw number']);
  });

  test('fds are duplicated up front and the copies closed once it settles, also on failure', async () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    using m = Memfd.createSync('counted');
    const env = { NOTIFY_SOCKET: path.join(dir, 'nobody') };
    await expect(storeFds('state', [m, m, m], { env })).rejects.toMatchObject({ code: 'ENOENT' });
    const { env: live, r } = await receiver();
    await storeFds('state', [m, m, m], { env: live });
    await r.next();
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before + 1); // only m itself
  });

  test('an fd that is not open is EBADF (operation SD_NOTIFY) and nothing is sent', async () => {
    const { r, env } = await receiver();
    const closed = 1_000_000;
    await expect(storeFds('state', [closed], { env })).rejects.toMatchObject({ code: 'EBADF', operation: 'SD_NOTIFY', fd: closed });
    expect(() => storeFdsSync('state', [closed], { env })).toThrow(expect.objectContaining({ code: 'EBADF', operation: 'SD_NOTIFY', syscall: 'sendmsg' }));
    await notify('MARKER=1', { env });
    expect((await r.next()).payload).toBe('MARKER=1');
  });

  describe('a session named "systemd"', () => {
    // The real kernel check runs in the VM tier; here GET_NAME is scripted.
    function bindingWithSession(name: string) {
      const sends: unknown[][] = [];
      const fake = fakeBinding({ LIVEUPDATE_SESSION_GET_NAME: () => ({ name }) });
      const binding = {
        ...fake.binding,
        unix: {
          ...fake.binding.unix,
          dup: (fd: number) => fd + 1000,
          sendDatagram: async (...args: unknown[]) => void sends.push(args),
          sendDatagramSync: (...args: unknown[]) => void sends.push(args),
        } as unknown as typeof fake.binding.unix,
      };
      return { binding, sends, calls: fake.calls };
    }
    const env = { NOTIFY_SOCKET: '/run/systemd/notify' };

    test.each([
      ['a Session object', (b: ReturnType<typeof bindingWithSession>['binding']) => new Session(7, { binding: b, direction: 'outgoing' })],
      ['a raw fd number', () => 7],
    ])('is refused as %s, before anything is sent', async (_what, file) => {
      const { binding, sends, calls } = bindingWithSession('systemd');
      const f = file(binding);
      await expect(storeFds('hijack', [f], { env, binding })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
        message: expect.stringContaining('"systemd"'),
      });
      expect(() => storeFdsSync('hijack', [f], { env, binding })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      expect(sends).toEqual([]);
      expect(calls.filter((c) => c.call === 'close')).toEqual([]);
      if (f instanceof Session) f.close();
    });

    test('any other session is sent (a duplicate of it)', async () => {
      const { binding, sends } = bindingWithSession('luo-demo.serv-f7b8a692c3ea413a9a50d592');
      expect(await storeFds('demo', [7], { env, binding })).toBe(true);
      expect(sends).toHaveLength(1);
      expect(sends[0]![2]).toEqual([1007]);
    });
  });
});

describe('notifyBarrier', () => {
  test('sends BARRIER=1 with a pipe write end as its only fd and resolves once the manager closed it', async () => {
    const { r, env } = await receiver('abstract', 'close');
    const before = fs.readdirSync('/proc/self/fd').length;
    expect(await notifyBarrier({ env })).toBe(true);
    expect(await r.next()).toMatchObject({ payload: 'BARRIER=1', creds: self, fds: [{ target: expect.stringMatching(/^pipe:/) }] });
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });

  test('rejects with ERR_BARRIER_TIMEOUT when the manager keeps the pipe open, and leaks no fd', async () => {
    const { r, env } = await receiver('path', 'hold');
    const before = fs.readdirSync('/proc/self/fd').length;
    await expect(notifyBarrier({ env, timeoutMs: 200 })).rejects.toMatchObject({ code: 'ERR_BARRIER_TIMEOUT', operation: 'BARRIER', timeoutMs: 200 });
    expect((await r.next()).payload).toBe('BARRIER=1');
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
  });

  test('resolves false without systemd; bad options are refused', async () => {
    expect(await notifyBarrier({ env: {} })).toBe(false);
    await expect(notifyBarrier({ env: {}, timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(notifyBarrier({ env: { NOTIFY_SOCKET: path.join(dir, 'nobody') } })).rejects.toMatchObject({ code: 'ENOENT', operation: 'SD_NOTIFY' });
  });
});
