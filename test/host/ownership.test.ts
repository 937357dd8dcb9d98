// Every fd-owning object closes exactly once, never a number it no longer
// owns, and is never closed by garbage collection.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LiveUpdate, Memfd, OwnedFd, Session } from '../../lib/index';
import { type Binding, defaultBinding } from '../../lib/binding';
import { fakeBinding, nativeError } from './fake-binding';
import { operationAt } from './named-ioctl';

const openFds = () => fs.readdirSync('/proc/self/fd').length;

describe('OwnedFd', () => {
  test('close() is idempotent and the fd getter then throws ERR_CLOSED', () => {
    const m = Memfd.createSync('x');
    m.close();
    m.close();
    expect(m.closed).toBe(true);
    expect(() => m.fd).toThrow(expect.objectContaining({ code: 'ERR_CLOSED', message: 'memfd "x" is closed' }));
  });

  test('a second close() never closes a recycled fd number', () => {
    const a = Memfd.createSync('a');
    const n = a.fd;
    a.close();
    const b = fs.openSync('/dev/null', 'r'); // the kernel hands out the lowest free number
    expect(b).toBe(n);
    a.close();
    expect(() => fs.fstatSync(b)).not.toThrow();
    fs.closeSync(b);
  });

  test('detach() hands the raw fd over; the object never touches it again', () => {
    const m = Memfd.createSync('d');
    const fd = m.detach();
    m.close();
    expect(m.closed).toBe(true);
    expect(() => m.detach()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => fs.fstatSync(fd)).not.toThrow();
    fs.closeSync(fd);
  });

  test('`using` closes at the end of the block', () => {
    let fd = -1;
    {
      using m = Memfd.createSync('scoped');
      fd = m.fd;
    }
    expect(() => fs.fstatSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  test('creating and closing many objects leaks no fd', async () => {
    const before = openFds();
    for (let i = 0; i < 200; i++) {
      using m = await Memfd.create(`leak-${i}`, { size: 4096 });
      m.addSealsSync(['grow']);
      using adopted = Memfd.from(new OwnedFd(fs.openSync(`/proc/self/fd/${m.fd}`, 'r')));
      expect(adopted.getSealsSync()).toEqual(['grow']);
    }
    expect(openFds()).toBe(before);
  });
});

describe('close() while a Promise call is in flight', () => {
  test('is deferred until the call settles, so no worker uses a recycled number', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { binding, calls } = fakeBinding();
    binding.ioctl = async (fd, op, ...inputs) => {
      calls.push({ call: operationAt(op), args: [fd, ...inputs] });
      await gate;
      return undefined;
    };
    const closed = () => calls.filter((c) => c.call === 'close').map((c) => c.args[0]);
    const lu = LiveUpdate.openSync('/dev/liveupdate', { binding });
    const session = lu.createSessionSync('busy');
    const [deviceFd, sessionFd] = [lu.fd, session.fd];
    lu.close();
    const preserving = session.preserve(5, 1);
    session.close();
    expect(session.closed).toBe(true);
    expect(closed()).toEqual([deviceFd]);
    release();
    await preserving;
    await new Promise((r) => setImmediate(r));
    const copy = calls.find((c) => c.call === 'LIVEUPDATE_SESSION_PRESERVE_FD')!.args[1] as number;
    expect(copy).not.toBe(5); // the worker got preserve()'s own copy of fd 5
    expect(closed()).toEqual([deviceFd, sessionFd, copy]);
  });
});

describe('Promise forms hold every fd they touch until they settle', () => {
  // The worker thread runs later than the call: by then the caller may have
  // closed its fd and the number may name another file. Seen with strace
  // under one thread-pool thread: the other file was preserved under the
  // caller's token.
  test('preserve(file) preserves the file it was given, even if the number is reused before the worker runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-preserve-'));
    const [mine, theirs] = [path.join(dir, 'mine'), path.join(dir, 'theirs')];
    fs.writeFileSync(mine, 'mine');
    fs.writeFileSync(theirs, 'theirs');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let preserved: string | undefined;
    const real = defaultBinding();
    const binding: Binding = {
      ...real,
      ioctlSync: () => 'held',
      ioctl: async (_fd, _op, fd) => {
        await gate;
        preserved = fs.readlinkSync(`/proc/self/fd/${fd}`);
        return undefined;
      },
    };
    const session = new Session(fs.openSync('/dev/null', 'r'), { binding, direction: 'outgoing' });
    const before = openFds();
    const file = fs.openSync(mine, 'r');
    const preserving = session.preserve(file, 1);
    fs.closeSync(file);
    const reused = fs.openSync(theirs, 'r');
    expect(reused).toBe(file); // the lowest free number comes back
    release();
    await preserving;
    expect(preserved).toBe(mine);
    fs.closeSync(reused);
    expect(openFds()).toBe(before); // the library's own copy is closed again
    session.close();
    fs.rmSync(dir, { recursive: true });
  });

  test('a file closed before the call is refused up front (EBADF), naming the operation', async () => {
    using session = new Session(fs.openSync('/dev/null', 'r'), { binding: { ...defaultBinding(), ioctlSync: () => 's' }, direction: 'outgoing' });
    const n = fs.openSync('/dev/null', 'r');
    fs.closeSync(n);
    await expect(session.preserve(n, 1)).rejects.toMatchObject({ code: 'EBADF', operation: 'LIVEUPDATE_SESSION_PRESERVE_FD' });
  });

  test("the copy is closed when the kernel refuses, and the error names the caller's fd, not the copy", async () => {
    let copy = -1;
    const binding: Binding = {
      ...defaultBinding(),
      ioctlSync: () => 's',
      ioctl: async (_fd, _op, fd) => {
        copy = fd as number;
        throw nativeError('EEXIST', 17, 'ioctl');
      },
    };
    using session = new Session(fs.openSync('/dev/null', 'r'), { binding, direction: 'outgoing' });
    const file = fs.openSync('/dev/null', 'r');
    const before = openFds();
    await expect(session.preserve(file, 7)).rejects.toMatchObject({
      code: 'EEXIST',
      operation: 'LIVEUPDATE_SESSION_PRESERVE_FD',
      fd: file,
      token: 7n,
      session: 's',
    });
    expect(copy).not.toBe(file);
    expect(openFds()).toBe(before);
    fs.closeSync(file);
  });
});

test('detach() is refused while a Promise call is in flight, so the fd cannot change hands under it', async () => {
  using m = Memfd.createSync('busy');
  const sealing = m.getSeals();
  expect(() => m.detach()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  expect(() => Memfd.from(m)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  await sealing;
  expect(m.closed).toBe(false);
});

test('objects that only carry an fd (a FileHandle) are not adopted', async () => {
  const handle = await fs.promises.open('/dev/null', 'r');
  try {
    expect(() => Memfd.from(handle)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  } finally {
    await handle.close();
  }
});

describe('garbage collection', () => {
  // A child process drops a Memfd made in dropIt() and collects it; returns the warning it got.
  function dropOne(env: NodeJS.ProcessEnv) {
    const script = `
      const { Memfd } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/index.js'))});
      const fs = require('node:fs');
      let fd;
      process.on('warning', (w) => {
        console.log(JSON.stringify({ name: w.name, code: w.code, message: w.message, detail: w.detail, stillOpen: fs.fstatSync(fd).size === 4096 }));
      });
      (function dropIt() { fd = Memfd.createSync('dropped', { size: 4096 }).fd; })();
      setTimeout(() => { globalThis.gc(); setTimeout(() => {}, 50); }, 10);
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
    return JSON.parse(out.trim().split('\n')[0]!);
  }

  test('a dropped object is reported with a warning naming it, and its fd stays open', () => {
    const { NODE_DEBUG: _, ...env } = process.env;
    const warning = dropOne(env);
    expect(warning).toMatchObject({ name: 'LiveUpdateWarning', code: 'LIVEUPDATE_UNCLOSED', stillOpen: true });
    expect(warning.message).toMatch(/^memfd "dropped" \(fd \d+\) was garbage-collected without close\(\); the fd stays open/);
    // Where it was made costs a stack capture per object, so it is opt-in; the warning says how.
    expect(warning.detail).toBe('run with NODE_DEBUG=liveupdate to see where it was created');
  });

  // Runs `body` in a child with --expose-gc; returns the warnings it printed and its own lines.
  function inChild(body: string) {
    const script = `
      const { Memfd, OwnedFd } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/index.js'))});
      process.on('warning', (w) => console.log(JSON.stringify({ warning: w.message })));
      ${body}
    `;
    const { NODE_DEBUG: _, ...env } = process.env;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
    return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { warning?: string; collected?: string });
  }

  // Objects are registered for the warning at the end of the job that made
  // them, if still open (issue 8): these pin that nothing is lost on the way.
  test('an object dropped in the job that made it is reported, even if a GC runs before that job ends', () => {
    const lines = inChild(`
      (function dropIt() { Memfd.createSync('early'); })();
      globalThis.gc();
      setTimeout(() => { globalThis.gc(); setTimeout(() => {}, 50); }, 10);
    `);
    expect(lines).toEqual([{ warning: expect.stringMatching(/^memfd "early" \(fd \d+\) was garbage-collected without close\(\)/) }]);
  });

  test('of many objects made in one job and closed in it, only the one left open is reported', () => {
    const lines = inChild(`
      for (let i = 0; i < 1000; i++) {
        const m = Memfd.createSync('closed-' + i);
        if (i !== 500) m.close();
      }
      let later = new OwnedFd(require('node:fs').openSync('/dev/null', 'r'), undefined);
      let detached = Memfd.createSync('detached');
      setTimeout(() => {
        // Registered by now (their job ended): closed and detached, they are unregistered.
        later.close();
        later = null;
        detached.detach();
        detached = null;
        // Made in a later job, after the first list was flushed, and dropped.
        (function dropLater() { Memfd.createSync('made-later'); })();
        setTimeout(() => { globalThis.gc(); setTimeout(() => { globalThis.gc(); setTimeout(() => {}, 50); }, 10); }, 10);
      }, 10);
    `);
    expect(lines.map((l) => l.warning?.replace(/ \(fd.*/, '')).sort()).toEqual(['memfd "closed-500"', 'memfd "made-later"']);
  });

  test('fake timers replacing queueMicrotask do not keep dropped objects from being reported', () => {
    const lines = inChild(`
      globalThis.queueMicrotask = () => {};
      (function dropIt() { Memfd.createSync('faked'); })();
      setTimeout(() => { globalThis.gc(); setTimeout(() => {}, 50); }, 10);
    `);
    expect(lines).toEqual([{ warning: expect.stringMatching(/^memfd "faked" /) }]);
  });

  test('a closed object is not held: it can be collected before the job that made it ends', () => {
    const lines = inChild(`
      const seen = new FinalizationRegistry((what) => console.log(JSON.stringify({ collected: what })));
      (function makeAndClose() {
        const m = Memfd.createSync('gone');
        seen.register(m, 'gone');
        m.close();
      })();
      globalThis.gc();
      setTimeout(() => {}, 50);
    `);
    expect(lines).toEqual([{ collected: 'gone' }]);
  });

  test('under NODE_DEBUG=liveupdate the warning names where the object was made: the first frame outside the library', () => {
    const warning = dropOne({ ...process.env, NODE_DEBUG: 'net,liveupdate' });
    expect(warning).toMatchObject({ name: 'LiveUpdateWarning', code: 'LIVEUPDATE_UNCLOSED', stillOpen: true });
    expect(warning.detail).toMatch(/^created at dropIt \(\[eval\]:\d+:\d+\)$/);
  });
});
