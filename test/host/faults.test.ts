// Faults on the host, with real processes where the fault needs one: a
// process out of fds, seals the kernel does not know, a hugetlb memfd, and
// a broker that goes away right after its prepare barrier. What the real
// kernel answers (hugetlb preservation, kexec with nothing loaded, EMFILE
// on the device, a session holder killed) is in test/guest/faults.mts; a
// broker killed with SIGKILL and clients adopting back, in
// test/guest/broker.mts.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { FdSocket, LiveUpdate, LiveUpdateBroker, LiveUpdateClient, Memfd } from '../../lib/index';
import type { Binding } from '../../types/binding';
import { fakeBinding, nativeError } from './fake-binding';
import { noReboot, standInDevice } from './stand-in-device';

const dist = path.resolve(__dirname, '../../dist/index.js');
const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).reverse().forEach((c) => c()));

/** Runs a script in a child node with `ulimit -n` set; resolves with what it printed as JSON. */
function underFdLimit(limit: number, script: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `ulimit -n ${limit} && exec "$0" -e "$1"`, process.execPath, script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${out}`))));
  });
}

describe('RLIMIT_NOFILE exhausted mid-way', () => {
  test('every call that needs an fd fails with EMFILE naming its operation, and nothing leaks', async () => {
    // The child fills its fd table with /dev/null, then tries each call with
    // no fd left; then frees the filler and counts its fds again.
    const script = `
      const fs = require('node:fs');
      const { FdSocket, LiveUpdate, Memfd } = require(${JSON.stringify(dist)});
      const real = require('node-gyp-build')(${JSON.stringify(path.resolve(__dirname, '../..'))});
      const count = () => fs.readdirSync('/proc/self/fd').length;
      // A session stand-in: a real fd for the session, LUO ioctls answered here.
      const L = real.ioctlLayout;
      const binding = { ...real, ioctlSync: (fd, op) => {
        if (op === L.LIVEUPDATE_SESSION_GET_NAME.index && fd === deviceFd) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL', errno: -22, syscall: 'ioctl' }); // the open probe
        return op === L.LIVEUPDATE_IOCTL_CREATE_SESSION.index ? real.memfdCreateSync('session', 0) : undefined;
      } };
      let deviceFd = -1;
      binding.openSync = (p, flags) => (deviceFd = real.openSync(p, flags));
      binding.ioctl = async (fd, op, ...inputs) => binding.ioctlSync(fd, op, ...inputs);
      const lu = LiveUpdate.openSync('/dev/null', { binding });
      const session = lu.createSessionSync('s');
      const memfd = Memfd.createSync('kept');
      const [a, b] = FdSocket.pair();
      const before = count();
      const filler = [];
      try { for (;;) filler.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
      const out = {};
      const shape = (e) => ({ code: e.code, operation: e.operation, syscall: e.syscall, message: e.message });
      const attempt = async (name, fn) => {
        try { const made = await fn(); out[name] = { ok: true }; for (const m of [].concat(made)) m && m.close && m.close(); }
        catch (e) { out[name] = shape(e); }
      };
      (async () => {
        await attempt('Memfd.createSync', () => Memfd.createSync('m'));
        await attempt('Memfd.create', () => Memfd.create('m'));
        await attempt('FdSocket.pair', () => FdSocket.pair());
        await attempt('LiveUpdate.openSync', () => LiveUpdate.openSync('/dev/null', { binding }));
        await attempt('session.preserve', () => session.preserve(memfd, 1));
        await attempt('fdSocket.send with an fd', () => a.send('x', [memfd]));
        for (const fd of filler) fs.closeSync(fd);
        out.leaked = count() - before;
        out.afterwards = Memfd.createSync('fine').getSealsSync();
        a.close(); b.close(); memfd.close(); session.close(); lu.close();
        process.stdout.write(JSON.stringify(out));
      })();
    `;
    const out = await underFdLimit(64, script);
    const emfile = (operation: string) => expect.objectContaining({ code: 'EMFILE', operation, message: expect.stringMatching(/^EMFILE: /) });
    expect(out).toEqual({
      'Memfd.createSync': emfile('MEMFD_CREATE'),
      'Memfd.create': emfile('MEMFD_CREATE'),
      'FdSocket.pair': emfile('SOCKETPAIR'),
      'LiveUpdate.openSync': emfile('LIVEUPDATE_OPEN'),
      'session.preserve': emfile('LIVEUPDATE_SESSION_PRESERVE_FD'), // its copy of the file could not be made
      'fdSocket.send with an fd': emfile('SENDMSG'),
      leaked: 0,
      afterwards: [],
    });
  });
});

describe('seals', () => {
  test('unknown seal names are refused before the syscall, and nothing is sealed', () => {
    const fake = fakeBinding();
    let added = 0;
    const binding: Binding = { ...fake.binding, addSealsSync: () => void added++ };
    using m = Memfd.from(100, { binding });
    for (const bad of ['hugetlb', 'F_SEAL_WRITE', 'WRITE', '', 'write ']) {
      expect(() => m.addSealsSync(['shrink', bad as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => m.addSealsSync('write' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(added).toBe(0);
  });

  test("F_SEAL_EXEC on an executable memfd brings the write seals with it (the kernel's W^X)", () => {
    using m = Memfd.createSync('exec');
    m.addSealsSync(['exec']);
    expect(m.getSealsSync()).toEqual(['shrink', 'grow', 'write', 'future-write', 'exec']);
  });
});

describe('a hugetlb memfd', () => {
  /** A memfd_create(MFD_HUGETLB) made by python3 (Memfd cannot make one) and sent over a socket. */
  async function hugetlbMemfd(flags = 'os.MFD_HUGETLB'): Promise<Memfd> {
    const [mine, theirs] = FdSocket.pair();
    cleanup.push(() => mine.close());
    const py = `import os, socket; s = socket.socket(fileno=3); s.setblocking(True); socket.send_fds(s, [b"h"], [os.memfd_create("huge", ${flags})])`;
    const child = spawn('python3', ['-c', py], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
    theirs.close();
    const { fds } = await mine.receive();
    await new Promise((resolve) => child.on('exit', resolve));
    return Memfd.from(fds[0]!);
  }

  test('is a memfd to the library; whether it can be preserved is the kernel’s answer, passed on with its meaning', async () => {
    using huge = await hugetlbMemfd();
    expect(fs.readlinkSync(`/proc/self/fd/${huge.fd}`)).toMatch(/^\/memfd:huge \(deleted\)$/);
    const fake = fakeBinding({
      LIVEUPDATE_SESSION_PRESERVE_FD: () => {
        throw nativeError('ENOENT', 2, 'ioctl'); // what LUO answers for a file kind it has no handler for
      },
    });
    using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding });
    using session = lu.createSessionSync('huge');
    expect(() => session.preserveSync(huge, 1)).toThrow(
      expect.objectContaining({ code: 'ENOENT', operation: 'LIVEUPDATE_SESSION_PRESERVE_FD', message: expect.stringMatching(/of a kind this kernel cannot preserve \(today: memfds that are not hugetlb\)/) }),
    );
    expect(fake.calls.filter((c) => c.call === 'LIVEUPDATE_SESSION_PRESERVE_FD')).toHaveLength(1); // the kernel was asked
  });

  test('is refused by mapSync before mmap: a huge-page mapping could not be unmapped at the length asked for', async () => {
    using huge = await hugetlbMemfd('os.MFD_HUGETLB | os.MFD_ALLOW_SEALING');
    huge.addSealsSync(['shrink']);
    expect(() => huge.mapSync()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE', message: expect.stringMatching(/hugetlb/) }));
  });
});

describe('a broker that goes away right after its barrier', () => {
  test('a new broker takes over the socket; a client is told its connection ended; adopt refuses an fd that is not a LUO session', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-restart-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'broker.sock');
    const device = standInDevice();
    const first = LiveUpdateBroker.start({ socketPath, binding: device.binding, kexec: noReboot });
    const client = LiveUpdateClient.connect(socketPath, { binding: device.binding });
    cleanup.push(() => client.close());
    const session = await client.createSession('vm');
    cleanup.push(() => session.close());
    client.onPrepare(() => {});
    expect(await first.prepare(5000)).toEqual([]);
    first.close(); // in place of SIGKILL: the stand-in device lives in this process
    await expect(client.listSessions()).rejects.toMatchObject({ code: 'ECONNRESET' });

    const second = LiveUpdateBroker.start({ socketPath, binding: device.binding, kexec: noReboot });
    cleanup.push(() => second.close());
    const again = LiveUpdateClient.connect(socketPath, { binding: device.binding });
    cleanup.push(() => again.close());
    // The first broker's own reference is gone with it; the client still holds its session.
    expect(await again.listSessions()).toEqual([]);
    expect(session.closed).toBe(false);
    // Adopting back needs /proc to show anon_inode:[luo_session], which only the
    // real kernel gives (the stand-in's sessions are memfds): the broker runs no
    // LUO ioctl on anything else. The adopt-back itself is a VM-tier case.
    await expect(again.adoptSession('vm', session)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/adopt takes a LUO session fd/) });
    expect(session.closed).toBe(false);
  });
});

