// Property: whatever order the API is called in — use after close, double
// close, finish before retrieve, preserve on an incoming session, Promise
// calls racing on one session, close or detach while one is in flight,
// Memfd.from on things that are not memfds — every call either does what a
// small model of the kernel says, or fails with a documented code; no fd
// number is closed twice or used by a worker after it was closed; and once
// everything is closed, no fd is left open. Runs on the ledger device
// (test/host/ledger-device.ts), which recycles numbers as the kernel does.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LiveUpdate, Memfd, OwnedFd, type SealName, Session } from '../../lib/index';
import { ledgerDevice } from './ledger-device';
import { CallCount, Canary, type Coded, allowed, expectFdTable, fdTable, fuzzParameters, tick, watchForCrashes } from './fuzz-support';

const CREATE_NAMES = ['vm-ram', 'vm-dev', 'kept-a'];
const RETRIEVE_NAMES = ['kept-a', 'kept-b', 'vm-ram', 'never-kept'];
const HANDED_OVER = { 'kept-a': [1n, 2n], 'kept-b': [7n] };
const TOKENS = [1n, 2n, 7n, 9n];
const SEALS: SealName[] = ['seal', 'shrink', 'grow', 'write', 'future-write', 'exec'];

type Action =
  | { a: 'open' }
  | { a: 'closeDevice' }
  | { a: 'create'; name: number; async: boolean }
  | { a: 'retrieveSession'; name: number; async: boolean }
  | { a: 'memfd' }
  | { a: 'preserve'; s: number; f: number; token: number; async: boolean }
  | { a: 'retrieveFd'; s: number; token: number; async: boolean }
  | { a: 'finish'; s: number; async: boolean }
  | { a: 'getName'; s: number; async: boolean }
  | { a: 'addSeals'; f: number; seals: SealName[]; async: boolean }
  | { a: 'from'; what: 'session' | 'device' | 'file' }
  | { a: 'close'; what: 'session' | 'file'; i: number }
  | { a: 'detach'; what: 'session' | 'file'; i: number }
  | { a: 'tick' }
  | { a: 'settle' };

const i = fc.nat({ max: 7 });
const bool = fc.boolean();
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const action: fc.Arbitrary<Action> = fc.oneof(
  w(1, fc.constant({ a: 'open' as const })),
  w(1, fc.constant({ a: 'closeDevice' as const })),
  w(4, fc.record({ a: fc.constant('create' as const), name: fc.nat({ max: CREATE_NAMES.length - 1 }), async: bool })),
  w(3, fc.record({ a: fc.constant('retrieveSession' as const), name: fc.nat({ max: RETRIEVE_NAMES.length - 1 }), async: bool })),
  w(3, fc.constant({ a: 'memfd' as const })),
  w(4, fc.record({ a: fc.constant('preserve' as const), s: i, f: i, token: fc.nat({ max: TOKENS.length - 1 }), async: bool })),
  w(4, fc.record({ a: fc.constant('retrieveFd' as const), s: i, token: fc.nat({ max: TOKENS.length - 1 }), async: bool })),
  w(2, fc.record({ a: fc.constant('finish' as const), s: i, async: bool })),
  w(2, fc.record({ a: fc.constant('getName' as const), s: i, async: bool })),
  w(2, fc.record({ a: fc.constant('addSeals' as const), f: i, seals: fc.subarray(SEALS, { maxLength: 2 }), async: bool })),
  w(2, fc.record({ a: fc.constant('from' as const), what: fc.constantFrom('session' as const, 'device' as const, 'file' as const) })),
  w(2, fc.record({ a: fc.constant('close' as const), what: fc.constantFrom('session' as const, 'file' as const), i })),
  w(2, fc.record({ a: fc.constant('detach' as const), what: fc.constantFrom('session' as const, 'file' as const), i })),
  w(2, fc.constant({ a: 'tick' as const })),
  w(2, fc.constant({ a: 'settle' as const })),
);

interface ModelSession {
  obj: Session;
  direction: 'outgoing' | 'incoming';
  closed: boolean;
  name: string;
  /** Outgoing: tokens preserved; incoming: tokens still to retrieve. */
  tokens: Set<bigint>;
}

interface ModelFile {
  obj: Memfd | OwnedFd;
  closed: boolean;
  /** The file itself, shared by the objects that held it (Memfd.from takes over an OwnedFd). */
  file: { preserved: boolean; sealed: boolean };
}

/** 'ok', or the code the call must fail with; undefined: any allowed code (the outcome depends on calls still in flight). */
type Expect = string | undefined;

class World {
  lu?: LiveUpdate;
  luClosed = true;
  readonly sessions: ModelSession[] = [];
  readonly files: ModelFile[] = [];
  readonly inflight: Promise<void>[] = [];
  readonly handedOver = new Map(Object.entries(HANDED_OVER).map(([k, v]) => [k, new Set(v)]));
  readonly retrieved = new Set<string>();
  calls = 0;

  constructor(readonly device: ReturnType<typeof ledgerDevice>) {}

  get exact(): boolean {
    return this.inflight.length === 0;
  }

  /** Runs one call and checks its outcome against `expected`. */
  run<T>(what: string, expected: Expect, fn: () => T): { ok: true; value: T } | { ok: false } {
    this.calls++;
    let value: T;
    try {
      value = fn();
    } catch (err) {
      const code = allowed(err);
      if (expected !== undefined && code !== expected) throw new Error(`${what}: expected ${expected}, got ${code}: ${(err as Error).message}`);
      return { ok: false };
    }
    if (expected !== undefined && expected !== 'ok') throw new Error(`${what}: expected ${expected}, but it succeeded`);
    return { ok: true, value };
  }

  /** A Promise call left in flight; its outcome is checked when it settles. */
  start<T>(what: string, expected: Expect, fn: () => Promise<T>, onValue: (v: T) => void = () => {}): void {
    this.calls++;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      throw new Error(`${what}: a Promise form threw synchronously: ${(err as Error).message}`, { cause: err });
    }
    this.inflight.push(
      p.then(
        (v) => {
          if (expected !== undefined && expected !== 'ok') throw new Error(`${what}: expected ${expected}, but it succeeded`);
          onValue(v);
        },
        (err) => {
          const code = allowed(err);
          if (expected !== undefined && code !== expected) throw new Error(`${what}: expected ${expected}, got ${code}: ${(err as Coded).message}`);
        },
      ),
    );
  }

  async settle(): Promise<void> {
    while (this.inflight.length > 0) await Promise.all(this.inflight.splice(0));
  }

  addSession(obj: Session, direction: ModelSession['direction'], name: string): void {
    const tokens = direction === 'incoming' ? new Set(this.handedOver.get(name)) : new Set<bigint>();
    this.sessions.push({ obj, direction, closed: false, name, tokens });
  }

  addFile(obj: Memfd | OwnedFd, file = { preserved: false, sealed: false }): void {
    this.files.push({ obj, closed: false, file });
  }

  async step(x: Action): Promise<void> {
    const b = this.device.binding;
    const s = this.sessions.length ? this.sessions[((x as { s?: number }).s ?? 0) % this.sessions.length] : undefined;
    switch (x.a) {
      case 'open':
        if (!this.luClosed) return;
        const r = this.run('open', 'ok', () => LiveUpdate.openSync('/dev/liveupdate', { binding: b }));
        if (r.ok) this.lu = r.value;
        this.luClosed = false;
        return;
      case 'closeDevice':
        this.run('device close', 'ok', () => this.lu?.close());
        this.luClosed = true;
        return;
      case 'create': {
        if (!this.lu) return;
        const name = CREATE_NAMES[x.name]!;
        const taken = this.sessions.some((m) => m.name === name && m.direction === 'outgoing' && !m.closed);
        const expected = this.luClosed ? 'ERR_CLOSED' : !this.exact ? undefined : taken ? 'EEXIST' : 'ok';
        const lu = this.lu;
        if (x.async) this.start(`createSession(${name})`, expected === 'ERR_CLOSED' ? expected : undefined, () => lu.createSession(name), (obj) => this.addSession(obj, 'outgoing', name));
        else {
          const r = this.run(`createSessionSync(${name})`, expected, () => lu.createSessionSync(name));
          if (r.ok) this.addSession(r.value, 'outgoing', name);
        }
        return;
      }
      case 'retrieveSession': {
        if (!this.lu) return;
        const name = RETRIEVE_NAMES[x.name]!;
        const expected = this.luClosed ? 'ERR_CLOSED' : !this.exact ? undefined : this.retrieved.has(name) ? 'EINVAL' : this.handedOver.has(name) ? 'ok' : 'ENOENT';
        const lu = this.lu;
        const got = (obj: Session) => {
          this.retrieved.add(name);
          this.addSession(obj, 'incoming', name);
        };
        if (x.async) this.start(`retrieveSession(${name})`, expected === 'ERR_CLOSED' ? expected : undefined, () => lu.retrieveSession(name), got);
        else {
          const r = this.run(`retrieveSessionSync(${name})`, expected, () => lu.retrieveSessionSync(name));
          if (r.ok) got(r.value);
        }
        return;
      }
      case 'memfd': {
        const r = this.run('Memfd.createSync', 'ok', () => Memfd.createSync('fuzz', { binding: b }));
        if (r.ok) this.addFile(r.value);
        return;
      }
      case 'preserve': {
        const f = this.files.length ? this.files[x.f % this.files.length] : undefined;
        if (!s || !f) return;
        const token = TOKENS[x.token]!;
        // The library's own checks come first, in this order; the kernel's after.
        const early = f.closed ? 'ERR_CLOSED' : s.direction === 'incoming' ? 'ERR_INVALID_STATE' : s.closed ? 'ERR_SESSION_CLOSED' : undefined;
        const kernel = s.tokens.has(token) ? 'EEXIST' : f.file.preserved ? 'EBUSY' : 'ok';
        const expected = early ?? (this.exact ? kernel : undefined);
        const done = () => {
          s.tokens.add(token);
          f.file.preserved = true;
        };
        if (x.async) this.start('preserve', early, () => s.obj.preserve(f.obj, token), done);
        else if (this.run('preserveSync', expected, () => s.obj.preserveSync(f.obj, token)).ok) done();
        return;
      }
      case 'retrieveFd': {
        if (!s) return;
        const token = TOKENS[x.token]!;
        const early = s.direction === 'outgoing' ? 'ERR_INVALID_STATE' : s.closed ? 'ERR_SESSION_CLOSED' : undefined;
        const expected = early ?? (this.exact ? (s.tokens.has(token) ? 'ok' : 'ENOENT') : undefined);
        const got = (fd: OwnedFd) => {
          s.tokens.delete(token);
          this.addFile(fd);
        };
        if (x.async) this.start('retrieve', early, () => s.obj.retrieve(token), got);
        else {
          const r = this.run('retrieveSync', expected, () => s.obj.retrieveSync(token));
          if (r.ok) got(r.value);
        }
        return;
      }
      case 'finish': {
        if (!s) return;
        const expected = s.direction === 'outgoing' ? 'ERR_INVALID_STATE' : s.closed ? 'ERR_SESSION_CLOSED' : 'ok';
        if (x.async) this.start('finish', expected, () => s.obj.finish());
        else this.run('finishSync', expected, () => s.obj.finishSync());
        return;
      }
      case 'getName': {
        if (!s) return;
        const expected = s.closed ? 'ERR_SESSION_CLOSED' : 'ok';
        const check = (name: string) => expect(name).toBe(s.name);
        if (x.async) this.start('getName', expected, () => s.obj.getName(), check);
        else {
          const r = this.run('getNameSync', expected, () => s.obj.getNameSync());
          if (r.ok) check(r.value);
        }
        return;
      }
      case 'addSeals': {
        const f = this.files.length ? this.files[x.f % this.files.length] : undefined;
        if (!f || !(f.obj instanceof Memfd)) return;
        const m = f.obj;
        const expected = f.closed ? 'ERR_CLOSED' : !this.exact ? undefined : f.file.sealed ? 'EPERM' : 'ok';
        const done = () => (f.file.sealed ||= x.seals.includes('seal'));
        if (x.async) this.start('addSeals', f.closed ? 'ERR_CLOSED' : undefined, () => m.addSeals(x.seals), done);
        else if (this.run('addSealsSync', expected, () => m.addSealsSync(x.seals)).ok) done();
        return;
      }
      case 'from': {
        // Memfd.from on what is not a memfd refuses and takes nothing; on an OwnedFd that is one, it takes it.
        const target =
          x.what === 'device' ? (this.lu ? { obj: this.lu as OwnedFd, closed: this.luClosed, memfd: false } : undefined)
          : x.what === 'session' ? (s ? { obj: s.obj as OwnedFd, closed: s.closed, memfd: false } : undefined)
          : this.files.find((m) => m.obj.constructor === OwnedFd && !m.closed);
        if (!target) return;
        const isFile = 'file' in target;
        const expected = target.closed ? (x.what === 'session' ? 'ERR_SESSION_CLOSED' : 'ERR_CLOSED') : isFile ? 'ok' : 'ERR_INVALID_ARG_VALUE';
        const r = this.run(`Memfd.from(${x.what})`, expected, () => Memfd.from(target.obj, { binding: b }));
        if (r.ok) {
          (target as ModelFile).closed = true; // consumed
          expect(target.obj.closed).toBe(true);
          this.addFile(r.value, (target as ModelFile).file);
        } else if (!target.closed) expect(target.obj.closed).toBe(false); // a refusal takes nothing
        return;
      }
      case 'close': {
        const m = x.what === 'session' ? this.sessions[x.i % Math.max(1, this.sessions.length)] : this.files[x.i % Math.max(1, this.files.length)];
        if (!m) return;
        this.run(`${x.what} close`, 'ok', () => m.obj.close()); // a second close does nothing
        m.closed = true;
        return;
      }
      case 'detach': {
        const m = x.what === 'session' ? this.sessions[x.i % Math.max(1, this.sessions.length)] : this.files[x.i % Math.max(1, this.files.length)];
        if (!m) return;
        const expected = m.closed ? (x.what === 'session' ? 'ERR_SESSION_CLOSED' : 'ERR_CLOSED') : this.exact ? 'ok' : undefined;
        const r = this.run(`${x.what} detach`, expected, () => m.obj.detach());
        if (r.ok) {
          m.closed = true;
          b.closeSync(r.value); // the raw number is ours now
        }
        return;
      }
      case 'tick':
        await tick();
        return;
      case 'settle':
        await this.settle();
        return;
    }
  }

  async closeAll(): Promise<void> {
    await this.settle();
    for (const m of [...this.sessions, ...this.files]) m.obj.close();
    this.lu?.close();
    // Deferred closes (close() during a Promise call) finish on their own.
    for (let k = 0; k < 3; k++) await tick();
  }
}

const counter = new CallCount('call orders on the ledger device');
const canary = new Canary();
let baseline: Map<number, string>;
beforeAll(() => {
  baseline = fdTable();
});
afterAll(() => canary.close());

test('any sequence of calls: modelled outcomes or documented codes, no number closed twice or used after close, nothing left open', async () => {
  const crashes = watchForCrashes();
  const params = fuzzParameters(400);
  let sequences = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 60, size: 'max' }), async (actions) => {
        const before = fdTable();
        const device = ledgerDevice(HANDED_OVER);
        const world = new World(device);
        try {
          await world.step({ a: 'open' });
          for (const x of actions) await world.step(x);
        } finally {
          await world.closeAll().catch(() => {});
          counter.add(world.calls);
          sequences++;
        }
        if (device.violations.length) throw new Error(`fd misuse: ${device.violations.join('; ')}`);
        const left = device.open();
        if (left.length) throw new Error(`left open after closing everything: ${left.join(', ')}`);
        expectFdTable(before, 'after a sequence');
        canary.check('after a sequence');
        crashes.check('during a sequence');
      }),
      params,
    );
  } finally {
    crashes.stop();
    counter.report(params.seed, `${sequences} sequences`);
  }
  expectFdTable(baseline, 'after all runs');
  expect(counter.n).toBeGreaterThan(0);
}, 120_000);
