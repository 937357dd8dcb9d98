// The library's Promise calls take turns on libuv's pool (lib/pool-gate.ts):
// no more at once than the CPUs the event loop does not need, so a burst
// of them cannot keep the loop from running until the last has finished.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LiveUpdate, Memfd, Session } from '../../lib/index';
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

  test('a burst of thousands drains in order', async () => {
    const gate = new PoolGate(3);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 5000 }, (_, i) => gate.run(async () => void order.push(i))));
    expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  test('the limit leaves one CPU to the event loop, and is at least one', () => {
    expect([1, 2, 3, 8].map((cpus) => defaultPoolLimit(cpus))).toEqual([1, 1, 2, 7]);
    expect(() => new PoolGate(0)).toThrow(RangeError);
  });
});

describe('Promise forms take turns', () => {
  // The addon's Promise functions, each recorded when the library calls it.
  const ASYNC = ['open', 'ioctl', 'memfdCreate', 'addSeals', 'getSeals', 'close'] as const;
  function recording() {
    const fake = fakeBinding();
    const started: string[] = [];
    for (const name of ASYNC) {
      const original = fake.binding[name] as (...args: unknown[]) => Promise<unknown>;
      (fake.binding as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => (started.push(name), original(...args));
    }
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
    ['LiveUpdate.open', async (b: Binding) => (await LiveUpdate.open('/dev/liveupdate', { binding: b })).close()],
    ['createSession', async (b: Binding) => (await LiveUpdate.openSync('/dev/liveupdate', { binding: b }).createSession('s')).close()],
    ['retrieveSession', async (b: Binding) => (await LiveUpdate.openSync('/dev/liveupdate', { binding: b }).retrieveSession('s')).close()],
    ['Session.preserve', (b: Binding) => new Session(7, { binding: b, direction: 'outgoing' }).preserve(8, 1)],
    ['Session.retrieve', async (b: Binding) => (await new Session(7, { binding: b, direction: 'incoming' }).retrieve(1)).close()],
    ['Session.finish', (b: Binding) => new Session(7, { binding: b, direction: 'incoming' }).finish()],
    ['Session.getName', (b: Binding) => new Session(7, { binding: b, direction: 'incoming' }).getName()],
    ['Memfd.create', async (b: Binding) => (await Memfd.create('m', { binding: b })).close()],
    ['Memfd.addSeals', (b: Binding) => Memfd.from(9, { binding: b }).addSeals(['grow'])],
    ['Memfd.getSeals', (b: Binding) => Memfd.from(9, { binding: b }).getSeals()],
  ])('%s waits while every turn is taken', async (_name, call) => {
    const { binding, started } = recording();
    // Memfd.from asks /proc whether fd 9 is a memfd: answer for the fake.
    binding.getSealsSync = () => 0;
    const release = saturate(binding);
    const done = call(binding).catch((err: unknown) => err);
    await settle();
    expect(started).toEqual([]);
    release.resolve();
    await done;
    expect(started.length).toBeGreaterThan(0);
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
