// The library's Promise calls take turns on libuv's pool (lib/pool-gate.ts):
// no more at once than there are CPUs, so on a small machine a burst of
// them cannot keep the loop from running until the last has finished.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LiveUpdate, Memfd, Session } from '../../lib/index';
import { createKexec } from '../../lib/kexec';
import { type Binding, defaultBinding } from '../../lib/binding';
import { PoolGate, defaultPoolLimit, poolGate } from '../../lib/pool-gate';
import { fakeBinding } from './fake-binding';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

// Lets every pending promise job and immediate run.
const settle = () => new Promise((r) => setImmediate(r));

describe('PoolGate', () => {
  test('starts at most `limit` calls at once, the rest in call order as turns free up', async () => {
    const gate = new PoolGate(2);
    const calls = Array.from({ length: 5 }, () => deferred<number>());
    const started: number[] = [];
    const results = calls.map((d, i) => gate.run(() => (started.push(i), d.promise)));
    expect(started).toEqual([0, 1]);
    expect([gate.active, gate.waiting]).toEqual([2, 3]);
    calls[1]!.resolve(1);
    await settle();
    expect(started).toEqual([0, 1, 2]);
    calls[0]!.resolve(0);
    calls[2]!.resolve(2);
    await settle();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    calls[3]!.resolve(3);
    calls[4]!.resolve(4);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4]);
    expect([gate.active, gate.waiting]).toEqual([0, 0]);
  });

  test('a call that rejects, or throws before returning its promise, frees its turn', async () => {
    const gate = new PoolGate(1);
    const first = deferred();
    const running = gate.run(() => first.promise);
    const throwing = gate.run(() => {
      throw new TypeError('bad argument');
    });
    const last = gate.run(async () => 'ran');
    first.reject(new Error('EIO'));
    await expect(running).rejects.toThrow('EIO');
    await expect(throwing).rejects.toThrow('bad argument');
    await expect(last).resolves.toBe('ran');
    expect([gate.active, gate.waiting]).toEqual([0, 0]);
  });

  test('thousands of waiting calls that all throw drain without recursing', async () => {
    const gate = new PoolGate(1);
    const first = deferred();
    const running = gate.run(() => first.promise);
    const failing = Array.from({ length: 20000 }, () =>
      gate.run(() => {
        throw new TypeError('bad argument');
      }),
    );
    first.resolve();
    await running;
    const results = await Promise.allSettled(failing);
    expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'bad argument')).toBe(true);
    expect([gate.active, gate.waiting]).toEqual([0, 0]);
  });

  test('a burst of thousands drains in order', async () => {
    const gate = new PoolGate(3);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 5000 }, (_, i) => gate.run(async () => void order.push(i))));
    expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  test('the limit is one call per CPU', () => {
    expect([1, 2, 3, 8].map((cpus) => defaultPoolLimit(cpus))).toEqual([1, 2, 3, 8]);
    expect(() => new PoolGate(0)).toThrow(RangeError);
  });
});

describe('Promise forms take turns', () => {
  // The addon's Promise functions, each recorded when the library calls it,
  // with whether the gate counted a turn for it at that moment.
  const ASYNC = ['open', 'ioctl', 'memfdCreate', 'addSeals', 'getSeals', 'close', 'kexecFileLoad', 'rebootKexec'] as const;
  function recording() {
    const fake = fakeBinding();
    const started: { name: string; inTurn: boolean }[] = [];
    for (const name of ASYNC) {
      const original = fake.binding[name] as (...args: unknown[]) => Promise<unknown>;
      (fake.binding as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        started.push({ name, inTurn: poolGate(fake.binding).active > 0 });
        return original(...args);
      };
    }
    // Memfd.from asks whether fd 9 is a memfd (F_GET_SEALS answers): it is.
    fake.binding.getSealsSync = () => 0;
    return { binding: fake.binding, started };
  }

  // Every turn taken by a call that waits for `release`.
  function saturate(binding: Binding) {
    const release = deferred();
    const gate = poolGate(binding);
    for (let i = 0; i < gate.limit; i++) void gate.run(() => release.promise);
    return release;
  }

  test.each([
    ['LiveUpdate.open', ['open', 'ioctl'], async (b: Binding) => (await LiveUpdate.open('/dev/liveupdate', { binding: b })).close()],
    ['createSession', ['ioctl'], async (b: Binding) => (await LiveUpdate.openSync('/dev/liveupdate', { binding: b }).createSession('s')).close()],
    ['retrieveSession', ['ioctl'], async (b: Binding) => (await LiveUpdate.openSync('/dev/liveupdate', { binding: b }).retrieveSession('s')).close()],
    ['Session.preserve', ['ioctl'], (b: Binding) => new Session(7, { binding: b, direction: 'outgoing' }).preserve(8, 1)],
    ['Session.retrieve', ['ioctl'], async (b: Binding) => (await new Session(7, { binding: b, direction: 'incoming' }).retrieve(1)).close()],
    ['Session.finish', ['ioctl'], (b: Binding) => new Session(7, { binding: b, direction: 'incoming' }).finish()],
    ['Session.getName', ['ioctl'], (b: Binding) => new Session(7, { binding: b, direction: 'incoming' }).getName()],
    ['Memfd.create', ['memfdCreate'], async (b: Binding) => (await Memfd.create('m', { binding: b })).close()],
    ['Memfd.addSeals', ['addSeals'], (b: Binding) => Memfd.from(9, { binding: b }).addSeals(['grow'])],
    ['Memfd.getSeals', ['getSeals'], (b: Binding) => Memfd.from(9, { binding: b }).getSeals()],
    ['kexec.unload', ['kexecFileLoad'], (b: Binding) => createKexec(() => b).unload()],
  ] as const)('%s waits while every turn is taken, and makes each addon call in a turn', async (_name, calls, call) => {
    const { binding, started } = recording();
    const release = saturate(binding);
    const done = call(binding);
    await settle();
    expect(started).toEqual([]);
    release.resolve();
    await done;
    expect(started).toEqual(calls.map((name) => ({ name, inTurn: true })));
  });

  test('kexec.reboot waits its turn too (the fake kernel refuses: nothing loaded)', async () => {
    const { binding, started } = recording();
    const release = saturate(binding);
    const rebooting = createKexec(() => binding).reboot();
    await settle();
    expect(started).toEqual([]);
    release.resolve();
    await expect(rebooting).rejects.toMatchObject({ code: 'EINVAL', operation: 'REBOOT_KEXEC' });
    expect(started).toEqual([{ name: 'rebootKexec', inTurn: true }]);
  });

  // close() during a Promise call is deferred until the call settles, then
  // done on the pool: that close takes a turn as well, and the number stays
  // open (and ours) the whole time.
  test('close() while a call waits for its turn closes the fd only after the call has run', async () => {
    const { binding, started } = recording();
    const closed: number[] = [];
    binding.closeSync = (fd) => void closed.push(fd);
    const session = new Session(7, { binding, direction: 'incoming' });
    const release = saturate(binding);
    const finishing = session.finish();
    session.close();
    await settle();
    expect(closed).toEqual([]);
    expect(started).toEqual([]);
    release.resolve();
    await finishing;
    await settle();
    expect(started).toEqual([
      { name: 'ioctl', inTurn: true },
      { name: 'close', inTurn: true },
    ]);
    expect(closed).toEqual([7]);
  });

  // The rule the gate must keep: a call that waits still holds its copy of
  // the caller's fd, so what it preserves is what it was given.
  test('a preserve that waits its turn preserves the file it was given, though the number is reused meanwhile', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-gate-'));
    const [mine, theirs] = [path.join(dir, 'mine'), path.join(dir, 'theirs')];
    fs.writeFileSync(mine, 'mine');
    fs.writeFileSync(theirs, 'theirs');
    let preserved: string | undefined;
    const binding: Binding = {
      ...defaultBinding(),
      ioctlSync: () => 'held',
      ioctl: async (_fd, _op, fd) => void (preserved = fs.readlinkSync(`/proc/self/fd/${fd}`)),
    };
    using session = new Session(fs.openSync('/dev/null', 'r'), { binding, direction: 'outgoing' });
    const release = saturate(binding);
    const file = fs.openSync(mine, 'r');
    const preserving = session.preserve(file, 1);
    fs.closeSync(file);
    const reused = fs.openSync(theirs, 'r');
    expect(reused).toBe(file);
    await settle();
    expect(preserved).toBeUndefined();
    release.resolve();
    await preserving;
    expect(preserved).toBe(mine);
    fs.closeSync(reused);
    fs.rmSync(dir, { recursive: true });
  });
});
