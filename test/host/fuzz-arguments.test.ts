// Property: any value passed to any public entry point — names of 0 to 80
// bytes with NULs and lone surrogates, tokens that are negative, fractional,
// 2^64 or more, strings, fds that are closed, negative, recycled, not
// numbers, or FileHandle-like objects, options of any shape — is either
// accepted exactly when an independent statement of the rules says so, or
// refused with Node's argument codes before any system call; nothing else.
// The LUO calls run on the fake binding (which records every call, so
// "before any system call" is checked); memfds and sockets on the real addon.
import * as fs from 'node:fs';
import * as net from 'node:net';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { FdSocket, LiveUpdate, Memfd, OwnedFd, Session } from '../../lib/index';
import { createKexec } from '../../lib/kexec';
import { fakeBinding } from './fake-binding';
import { ARGUMENT_CODES, CallCount, Canary, allowed, expectFdTable, fdTable, fuzzParameters, watchForCrashes } from './fuzz-support';

const U64_MAX = (1n << 64n) - 1n;

// --- the rules, stated independently of lib/validate.ts --------------------

type Verdict = 'ok' | 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE' | 'ERR_CLOSED';

const sessionNameVerdict = (x: unknown): Verdict => {
  if (typeof x !== 'string') return 'ERR_INVALID_ARG_TYPE';
  const bytes = Buffer.byteLength(x);
  return x.includes('\0') || bytes < 1 || bytes > 63 || /\p{Surrogate}/u.test(x) ? 'ERR_INVALID_ARG_VALUE' : 'ok';
};
const tokenVerdict = (x: unknown): Verdict => {
  if (typeof x === 'bigint') return x >= 0n && x <= U64_MAX ? 'ok' : 'ERR_OUT_OF_RANGE';
  if (typeof x === 'number') return Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER ? 'ok' : 'ERR_OUT_OF_RANGE';
  return 'ERR_INVALID_ARG_TYPE';
};
const fdNumberVerdict = (x: unknown): Verdict =>
  typeof x !== 'number' ? 'ERR_INVALID_ARG_TYPE' : Number.isInteger(x) && x >= 0 && x <= 0x7fffffff ? 'ok' : 'ERR_OUT_OF_RANGE';
/** Anything with an `fd` is accepted where the API only reads the number (preserve, send). */
const fdLikeVerdict = (x: unknown): Verdict => {
  if (typeof x === 'number') return fdNumberVerdict(x);
  if (x instanceof OwnedFd) return x.closed ? 'ERR_CLOSED' : 'ok';
  if (typeof x === 'object' && x !== null && 'fd' in x) return fdNumberVerdict((x as { fd: unknown }).fd);
  return 'ERR_INVALID_ARG_TYPE';
};
/** Only a number or an OwnedFd can be adopted (a FileHandle still owns its fd). */
const adoptableVerdict = (x: unknown): Verdict => {
  if (typeof x === 'number') return fdNumberVerdict(x);
  if (x instanceof OwnedFd) return x.closed ? 'ERR_CLOSED' : 'ok';
  return 'ERR_INVALID_ARG_TYPE';
};

// --- what is thrown at it --------------------------------------------------

const SPECIAL_CHARS = ['\0', '\ud800', '\udfff', '\udc00\ud800', 'é', '€', '😀', '\u{10FFFF}', '/', ' ', '\n'];
/** Strings of about 0 to 80 UTF-8 bytes, mixing any code points with NUL and lone surrogates. */
const nameString = fc
  .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom(...SPECIAL_CHARS), fc.constant('x'.repeat(31))), { maxLength: 16 })
  .map((parts) => parts.join(''))
  .map((s) => (Buffer.byteLength(s) > 80 ? s.slice(0, 40) : s));
const edgeNames = fc.constantFrom('', 'a', 'x'.repeat(63), 'x'.repeat(64), `${'é'.repeat(31)}x`, `${'é'.repeat(32)}`, 'a\0b', 'vm\ud800', '😀'.repeat(15), '😀'.repeat(16));
const notAString = fc.oneof(fc.integer(), fc.bigInt(), fc.constant(null), fc.constant(undefined), fc.object({ maxDepth: 1 }), fc.array(fc.string(), { maxLength: 2 }), fc.boolean());
const anyName = fc.oneof({ weight: 5, arbitrary: nameString }, { weight: 2, arbitrary: edgeNames }, { weight: 1, arbitrary: notAString });

const anyToken = fc.oneof(
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
  fc.constantFrom(0n, U64_MAX, U64_MAX + 1n, -1n, 1n << 64n, 1n << 63n),
  fc.nat(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 0.5, -1, 2 ** 53 - 1, 2 ** 53, 2 ** 64, Number.MAX_VALUE, NaN, Infinity, -Infinity),
  fc.string({ maxLength: 8 }),
  notAString,
);

const fdNumber = fc.oneof(
  fc.integer({ min: -3, max: 2 ** 31 + 3 }),
  fc.constantFrom(-1, 0, 0x7fffffff, 0x80000000, 2 ** 32, 1.5, -0, NaN, Infinity),
  fc.double(),
);
/** Fds as numbers and as objects: FileHandle-like ones, ones whose fd is not a number. */
const fdLikeShape = fc.oneof(
  { weight: 3, arbitrary: fdNumber },
  { weight: 1, arbitrary: fdNumber.map((fd) => ({ fd })) },
  { weight: 1, arbitrary: fdNumber.map((fd) => ({ fd, close: async () => {}, readFile: async () => Buffer.alloc(0) })) }, // FileHandle-like
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 4 }), fc.constant(null), fc.constant(undefined), fc.bigInt({ min: 0n, max: 10n })).map((fd) => ({ fd })) },
  { weight: 1, arbitrary: notAString },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
);
/** OwnedFds made by the arbitraries, closed after each run (no unclosed-object warnings). */
const madeOwned: OwnedFd[] = [];
/** Plus live and closed OwnedFds, made per call on the fake binding. */
const fdLike = (binding: ReturnType<typeof fakeBinding>['binding']) =>
  fc.oneof(
    { weight: 6, arbitrary: fdLikeShape },
    { weight: 1, arbitrary: fc.boolean().map((closed) => ({ owned: closed ? 'closed' : 'open' })) },
  ).map((x) => {
    if (typeof x !== 'object' || x === null || !('owned' in x)) return x;
    const o = new OwnedFd(7, { binding });
    if (x.owned === 'closed') o.close();
    else madeOwned.push(o);
    return o;
  });

const anyOptions = fc.oneof(
  fc.constant(undefined),
  fc.constant({}),
  fc.constant(null),
  fc.integer(),
  fc.string({ maxLength: 4 }),
  fc.record({ direction: fc.oneof(fc.constantFrom('incoming', 'outgoing', 'sideways', ''), fc.integer()) }, { requiredKeys: [] }),
  fc.record({ retryBusyMs: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 3 })) }, { requiredKeys: [] }),
  fc.record({ size: fc.oneof(fc.integer({ min: -2, max: 1 << 16 }), fc.bigInt({ min: -2n, max: 1n << 60n }), fc.double(), fc.string({ maxLength: 3 })), allowSealing: fc.oneof(fc.boolean(), fc.integer()) }, { requiredKeys: [] }),
  fc.record({ maxPayload: fc.oneof(fc.integer({ min: -2, max: 2 ** 25 }), fc.double(), fc.constantFrom(2 ** 32, 2 ** 53, NaN, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1)) }, { requiredKeys: [] }),
);

// --- the checks ------------------------------------------------------------

/** One count per property (test), printed after it. */
let counter = new CallCount('arguments');
beforeEach((context) => {
  counter = new CallCount(`arguments: ${context.task.name}`);
});
afterEach(() => counter.report(seed));
const canary = new Canary();
let baseline: Map<number, string>;
let fileHandle: fs.promises.FileHandle;
const crashes = watchForCrashes();
beforeAll(async () => {
  fileHandle = await fs.promises.open('/dev/null', 'r');
  baseline = fdTable();
});
afterAll(async () => {
  crashes.stop();
  expectFdTable(baseline, 'after all runs');
  await fileHandle.close();
  canary.close();
});
// One seed for the file, printed with every summary line (and in a failure's message).
const seed = fuzzParameters(1).seed;
const params = (numRuns: number) => ({ ...fuzzParameters(numRuns), seed });

/**
 * Runs one call; checks it against the verdict (when given), that argument
 * errors came before any system call, and returns what it made (to close).
 */
function outcome<T>(calls: unknown[], verdict: Verdict | undefined, fn: () => T): T | undefined {
  counter.add();
  const before = calls.length;
  let value: T;
  try {
    value = fn();
  } catch (err) {
    const code = allowed(err);
    if (ARGUMENT_CODES.has(code) && calls.length !== before) throw new Error(`${code} came after a system call: ${(err as Error).message}`);
    if (verdict !== undefined && code !== verdict && !(verdict === 'ok' && !code.startsWith('ERR_'))) {
      throw new Error(`expected ${verdict}, got ${code}: ${(err as Error).message}`);
    }
    return undefined;
  }
  if (verdict !== undefined && verdict !== 'ok') throw new Error(`expected ${verdict}, but it was accepted`);
  return value;
}

async function outcomeAsync<T>(calls: unknown[], verdict: Verdict | undefined, fn: () => Promise<T>): Promise<T | undefined> {
  counter.add();
  const before = calls.length;
  try {
    const value = await fn();
    if (verdict !== undefined && verdict !== 'ok') throw new Error(`expected ${verdict}, but it was accepted`);
    return value;
  } catch (err) {
    if ((err as Error).message?.startsWith('expected ')) throw err;
    const code = allowed(err);
    if (ARGUMENT_CODES.has(code) && calls.length !== before) throw new Error(`${code} came after a system call: ${(err as Error).message}`);
    if (verdict !== undefined && code !== verdict) throw new Error(`expected ${verdict}, got ${code}: ${(err as Error).message}`);
    return undefined;
  }
}

function afterRun(before: Map<number, string>): void {
  for (const o of madeOwned.splice(0)) o.close();
  expectFdTable(before, 'after a call');
  canary.check('after a call');
  crashes.check('after a call');
}

const checked = <A extends unknown[]>(arbs: { [K in keyof A]: fc.Arbitrary<A[K]> }, body: (...args: A) => void | Promise<void>) =>
  fc.asyncProperty(...(arbs as unknown as [fc.Arbitrary<unknown>]), async (...args: unknown[]) => {
    // Compared per run, so a leak fails its own run and shrinking stays honest.
    const before = fdTable();
    await body(...(args as A));
    afterRun(before);
  });

const RUNS = 500;

describe('on the fake binding: the LUO calls', () => {
  test('LiveUpdate.openSync/open(path, options)', async () => {
    const path = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('/dev/liveupdate', 'a\0b', ''), notAString);
    await fc.assert(
      checked([path, anyOptions], async (p, options) => {
        const { binding, calls } = fakeBinding();
        const opts = typeof options === 'object' && options !== null ? { ...options, binding } : options;
        const retry = (opts as { retryBusyMs?: unknown } | undefined)?.retryBusyMs;
        if (opts === undefined) return; // without a binding it would open the real device
        const verdict: Verdict =
          p === undefined ? 'ok' // the default path
          : typeof p !== 'string' ? 'ERR_INVALID_ARG_TYPE'
          : p.includes('\0') ? 'ERR_INVALID_ARG_VALUE'
          : 'ok';
        const optsVerdict: Verdict =
          typeof opts !== 'object' || opts === null ? 'ERR_INVALID_ARG_TYPE'
          : retry !== undefined && typeof retry !== 'number' ? 'ERR_INVALID_ARG_TYPE'
          : typeof retry === 'number' && !(retry >= 0 && retry <= 0x7fffffff) ? 'ERR_OUT_OF_RANGE'
          : 'ok';
        const both = verdict === 'ok' ? optsVerdict : verdict;
        outcome(calls, both, () => LiveUpdate.openSync(p as string, opts as never))?.close();
        (await outcomeAsync(calls, both, () => LiveUpdate.open(p as string, opts as never)))?.close();
      }),
      params(RUNS),
    );
  });

  test('createSession / retrieveSession (name)', async () => {
    await fc.assert(
      checked([anyName, fc.boolean()], async (name, retrieve) => {
        const { binding, calls } = fakeBinding();
        using lu = LiveUpdate.openSync('/dev/liveupdate', { binding });
        const verdict = sessionNameVerdict(name);
        outcome(calls, verdict, () => (retrieve ? lu.retrieveSessionSync(name as string) : lu.createSessionSync(name as string)))?.close();
        (await outcomeAsync(calls, verdict, () => (retrieve ? lu.retrieveSession(name as string) : lu.createSession(name as string))))?.close();
      }),
      params(RUNS),
    );
  });

  test('session.preserve(file, token), sync and Promise', async () => {
    const { binding } = fakeBinding();
    await fc.assert(
      checked([fdLike(binding), anyToken], async (file, token) => {
        const fake = fakeBinding();
        using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding });
        using session = lu.createSessionSync('s');
        const verdict = fdLikeVerdict(file) === 'ok' ? tokenVerdict(token) : fdLikeVerdict(file);
        outcome(fake.calls, verdict, () => session.preserveSync(file as number, token as bigint));
        await outcomeAsync(fake.calls, verdict, () => session.preserve(file as number, token as bigint));
        if (verdict === 'ok') {
          // The Promise form preserved a copy of the fd, and closed the copy.
          const dup = fake.calls.filter((c) => c.call === 'dup').at(-1)!;
          const copy = fake.calls.filter((c) => c.call === 'LIVEUPDATE_SESSION_PRESERVE_FD').at(-1)!;
          expect((copy.args[1] as { fd: number }).fd).not.toBe(dup.args[0]);
        }
      }),
      params(RUNS),
    );
  });

  test('incoming session.retrieve(token), sync and Promise', async () => {
    await fc.assert(
      checked([anyToken], async (token) => {
        const fake = fakeBinding();
        using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding });
        using session = lu.retrieveSessionSync('s');
        const verdict = tokenVerdict(token);
        outcome(fake.calls, verdict, () => session.retrieveSync(token as bigint))?.close();
        (await outcomeAsync(fake.calls, verdict, () => session.retrieve(token as bigint)))?.close();
      }),
      params(RUNS),
    );
  });

  test('new Session(file, options): adopts only numbers and OwnedFds, whatever the options', async () => {
    const { binding } = fakeBinding();
    await fc.assert(
      checked([fdLike(binding), anyOptions], (file, options) => {
        const fake = fakeBinding({ LIVEUPDATE_SESSION_PRESERVE_FD: () => { throw Object.assign(new Error('EINVAL'), { code: 'EINVAL', errno: -22, syscall: 'ioctl' }); } });
        if (file instanceof OwnedFd && !file.closed) file = new OwnedFd(8, { binding: fake.binding });
        const opts = typeof options === 'object' && options !== null ? { ...options, binding: fake.binding } : options;
        const direction = (opts as { direction?: unknown } | undefined)?.direction;
        const verdict: Verdict =
          adoptableVerdict(file) !== 'ok' ? adoptableVerdict(file)
          : opts !== undefined && (typeof opts !== 'object' || opts === null) ? 'ERR_INVALID_ARG_TYPE'
          : direction !== undefined && direction !== 'incoming' && direction !== 'outgoing' ? (typeof direction === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE')
          : 'ok';
        if (opts === undefined && verdict === 'ok') return; // without a binding it would probe a real fd
        const s = outcome(fake.calls, verdict, () => new Session(file as number, opts as never));
        if (s) {
          expect(['incoming', 'outgoing']).toContain(s.direction);
          s.close();
        } else if (file instanceof OwnedFd && !file.closed) file.close(); // refused: still ours
      }),
      params(RUNS),
    );
  });

  test('new OwnedFd(fd): only fd numbers are taken', async () => {
    await fc.assert(
      checked([fdLikeShape], (fd) => {
        const fake = fakeBinding();
        outcome(fake.calls, fdNumberVerdict(fd), () => new OwnedFd(fd as number, { binding: fake.binding }))?.close();
      }),
      params(RUNS),
    );
  });

  test('kexec.load(options)', async () => {
    const opts = fc.oneof(
      anyOptions,
      fc.record({ kernel: fc.oneof(fc.constantFrom('/nonexistent/bzImage', '/dev/null', 'a\0b', ''), notAString), initrd: fc.oneof(fc.constantFrom(undefined, '/dev/null', '/nonexistent'), notAString), cmdline: fc.oneof(fc.string({ maxLength: 8 }), notAString) }, { requiredKeys: [] }),
    );
    await fc.assert(
      checked([opts], async (options) => {
        const fake = fakeBinding();
        const k = createKexec(() => fake.binding, () => 'console=ttyS0');
        outcome(fake.calls, undefined, () => k.loadSync(options as never));
        await outcomeAsync(fake.calls, undefined, () => k.load(options as never));
      }),
      params(RUNS),
    );
  });
});

describe('on the real addon: memfds and sockets', () => {
  test('Memfd.createSync/create(name, options)', async () => {
    const memfdName = fc.oneof(nameString, fc.constantFrom('x'.repeat(249), 'x'.repeat(250), 'é'.repeat(125)), notAString);
    await fc.assert(
      checked([memfdName, anyOptions], async (name, options) => {
        const o = options as Record<string, unknown> | undefined | null;
        const size = typeof o === 'object' && o !== null ? o.size : undefined;
        const sealing = typeof o === 'object' && o !== null ? o.allowSealing : undefined;
        const verdict: Verdict =
          typeof name !== 'string' ? 'ERR_INVALID_ARG_TYPE'
          : name.includes('\0') ? 'ERR_INVALID_ARG_VALUE'
          : o !== undefined && (typeof o !== 'object' || o === null) ? 'ERR_INVALID_ARG_TYPE'
          : size !== undefined && typeof size !== 'number' && typeof size !== 'bigint' ? 'ERR_INVALID_ARG_TYPE'
          : size !== undefined && !(Number.isSafeInteger(Number(size)) && Number(size) >= 0 && (typeof size === 'bigint' || Number.isInteger(size))) ? 'ERR_OUT_OF_RANGE'
          : sealing !== undefined && typeof sealing !== 'boolean' ? 'ERR_INVALID_ARG_TYPE'
          : Buffer.byteLength(name) > 249 ? undefined as never // the kernel's limit: EINVAL from memfd_create
          : 'ok';
        const calls: unknown[] = [];
        const m = outcome(calls, verdict, () => Memfd.createSync(name as string, o as never));
        if (m) {
          expect(fs.fstatSync(m.fd).size).toBe(Number(size ?? 0));
          m.close();
        }
        (await outcomeAsync(calls, verdict, () => Memfd.create(name as string, o as never)))?.close();
      }),
      params(300),
    );
  });

  test('Memfd.from(fd): closed, negative, recycled, pipes, FileHandles; nothing is taken unless it is a memfd', async () => {
    const pick = fc.oneof(
      fc.constantFrom('memfd', 'memfd-owned', 'pipe', 'devnull', 'closed-number', 'stale-owned', 'filehandle', 'socket'),
      fdLikeShape,
    );
    await fc.assert(
      checked([pick], (what) => {
        const opened: number[] = [];
        const open = (n: number) => (opened.push(n), n);
        let file: unknown = what;
        let verdict: Verdict | undefined;
        switch (what) {
          case 'memfd':
            file = open(Memfd.createSync('m').detach());
            verdict = 'ok';
            break;
          case 'memfd-owned':
            file = Memfd.createSync('m');
            verdict = 'ok';
            break;
          case 'pipe': {
            const [r, w] = pipe();
            open(w);
            file = open(r);
            verdict = 'ERR_INVALID_ARG_VALUE';
            break;
          }
          case 'devnull':
            file = open(fs.openSync('/dev/null', 'r'));
            verdict = 'ERR_INVALID_ARG_VALUE';
            break;
          case 'closed-number': {
            const n = fs.openSync('/dev/null', 'r');
            fs.closeSync(n);
            file = n;
            verdict = 'ERR_INVALID_ARG_VALUE';
            break;
          }
          case 'stale-owned': {
            // An OwnedFd closed before its number went to a new memfd: it must not reach the new file.
            const stale = Memfd.createSync('old');
            stale.close();
            open(Memfd.createSync('new').detach());
            file = stale;
            verdict = 'ERR_CLOSED';
            break;
          }
          case 'filehandle':
            file = fileHandle;
            verdict = 'ERR_INVALID_ARG_TYPE';
            break;
          case 'socket': {
            const [a, b] = defaultBinding().unix.socketPair();
            open(b);
            file = open(a);
            verdict = 'ERR_INVALID_ARG_VALUE';
            break;
          }
          default:
            // Raw shapes: numbers here may name this process's own fds (vitest's, the canary's):
            // only refusals are tried on the real addon, never adoptions.
            verdict = adoptableVerdict(what);
            if (verdict === 'ok') return;
        }
        const m = outcome([], verdict, () => Memfd.from(file as number));
        if (m) {
          expect(m.getSealsSync()).toEqual([]);
          if (typeof file === 'number') opened.splice(opened.indexOf(file), 1);
          m.close();
        } else if (file instanceof OwnedFd) file.close();
        for (const n of opened) fs.closeSync(n);
      }),
      params(RUNS),
    );
  });

  test('memfd.addSeals(seals): unknown seal names are refused before the syscall', async () => {
    const seal = fc.oneof(fc.constantFrom('seal', 'shrink', 'grow', 'write', 'future-write', 'exec'), fc.constantFrom('SEAL', 'F_SEAL_WRITE', 'hugetlb', '', 'write '), fc.string({ maxLength: 6 }), notAString);
    const seals = fc.oneof({ weight: 5, arbitrary: fc.array(seal, { maxLength: 4 }) }, { weight: 1, arbitrary: notAString }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });
    const KNOWN = new Set(['seal', 'shrink', 'grow', 'write', 'future-write', 'exec']);
    await fc.assert(
      checked([seals, fc.boolean()], async (list, promise) => {
        using m = Memfd.createSync('sealed');
        const before = m.getSealsSync();
        const verdict: Verdict = !Array.isArray(list) ? 'ERR_INVALID_ARG_TYPE' : list.every((s) => KNOWN.has(s as string)) ? 'ok' : 'ERR_INVALID_ARG_VALUE';
        if (promise) await outcomeAsync([], verdict, () => m.addSeals(list as never));
        else outcome([], verdict, () => m.addSealsSync(list as never));
        if (verdict !== 'ok') {
          expect(m.getSealsSync()).toEqual(before); // refused: nothing was added
          return;
        }
        const asked = new Set(list as string[]);
        const got = new Set(m.getSealsSync());
        for (const s of asked) expect(got).toContain(s);
        // The kernel makes an executable memfd sealed against exec W^X: F_SEAL_EXEC brings the write seals with it.
        const implied = asked.has('exec') ? ['shrink', 'grow', 'write', 'future-write'] : [];
        for (const s of got) if (!asked.has(s)) expect(implied).toContain(s);
      }),
      params(RUNS),
    );
  });

  test('FdSocket: pair(options), send(payload, fds), new FdSocket(not a socket), FdSocket.from(not a net.Socket)', async () => {
    const payload = fc.oneof(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), fc.constant(''), fc.constant(Buffer.alloc(0)), notAString);
    const fdsArg = fc.oneof({ weight: 4, arbitrary: fc.array(fc.oneof(fc.constantFrom('memfd', 'closed'), fdLikeShape), { maxLength: 3 }) }, { weight: 1, arbitrary: notAString });
    await fc.assert(
      checked([anyOptions, payload, fdsArg, fc.constantFrom('pair', 'memfd', 'pipe', 'net-object')], async (options, data, fds, target) => {
        const o = typeof options === 'object' && options !== null ? (options as Record<string, unknown>) : undefined;
        const max = o?.maxPayload;
        const optsVerdict: Verdict =
          options !== undefined && o === undefined ? 'ERR_INVALID_ARG_TYPE'
          : max !== undefined && !(Number.isSafeInteger(max) && (max as number) >= 1 && (max as number) <= 16 * 1024 * 1024) ? 'ERR_OUT_OF_RANGE'
          : 'ok';
        if (target !== 'pair') {
          // Not a socket: refused, and the fd stays the caller's.
          const [r, w] = pipe();
          const m = Memfd.createSync('not-a-socket');
          try {
            const file = target === 'memfd' ? m.fd : target === 'pipe' ? r : new net.Socket();
            const verdict = optsVerdict !== 'ok' ? undefined : target === 'net-object' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_INVALID_ARG_VALUE';
            if (target === 'net-object') outcome([], verdict, () => FdSocket.from(file as net.Socket, options as never))?.close();
            else outcome([], verdict, () => new FdSocket(file as number, options as never))?.close();
          } finally {
            m.close();
            fs.closeSync(r);
            fs.closeSync(w);
          }
          return;
        }
        const pair = outcome([], optsVerdict, () => FdSocket.pair(options as never));
        if (!pair) return;
        const [a, b] = pair;
        const made: Memfd[] = [];
        try {
          const list = Array.isArray(fds)
            ? fds.map((f) => {
                if (f === 'memfd') return made[made.push(Memfd.createSync('sent')) - 1]!;
                if (f === 'closed') {
                  const m = Memfd.createSync('closed');
                  m.close();
                  return m;
                }
                // A valid raw number could name vitest's own fds: sending copies them, harmless, but keep to refusals.
                return fdLikeVerdict(f) === 'ok' ? -1 : f;
              })
            : fds;
          const dataVerdict: Verdict =
            typeof data !== 'string' && !Buffer.isBuffer(data) ? 'ERR_INVALID_ARG_TYPE' : Buffer.byteLength(data as string) === 0 ? 'ERR_OUT_OF_RANGE' : 'ok';
          const listVerdict: Verdict =
            list === undefined ? 'ok' : !Array.isArray(list) ? 'ERR_INVALID_ARG_TYPE' : (list.map(fdLikeVerdict).find((v) => v !== 'ok') ?? 'ok');
          const verdict = dataVerdict !== 'ok' ? dataVerdict : listVerdict;
          await outcomeAsync([], verdict, () => a.send(data as string, list as never));
          if (verdict === 'ok') {
            const got = await b.receive();
            try {
              expect(got.payload.equals(Buffer.from(data as string))).toBe(true);
              expect(got.fds).toHaveLength(made.length);
            } finally {
              for (const f of got.fds) f.close();
            }
          }
        } finally {
          for (const m of made) m.close();
          a.close();
          b.close();
        }
      }),
      params(300),
    );
  });
});

function pipe(): [number, number] {
  return defaultBinding().pipeSync() as [number, number];
}
