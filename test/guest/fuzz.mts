// Property-based fuzzing of the public API on the real device, in stage 1
// of the VM tier: random sequences over session names (valid, too long,
// with NUL, lone surrogates, not strings), tokens (u64 edges, negative,
// fractional, 2^64, strings), fds (live, closed, recycled numbers,
// negative, huge, sessions and the device itself) and call orders (use
// after close, double close, detach, retrieve and finish on outgoing
// sessions, Promise calls left in flight while the session or file is
// closed, session fds passed over a socket and adopted). The host runs the
// same kind of properties against a model (test/host/fuzz-*.test.ts);
// here the kernel answers.
//
// Invariants after every sequence: no crash (no unhandled rejection or
// exception), only codes documented for the operation, exact outcomes
// where the state is known (nothing in flight), the fd table back to its
// baseline, a canary fd still the same file, and no session left in the
// kernel (every name used can be created again).
import * as fs from 'node:fs';
import fc from 'fast-check';
import { FdSocket, LiveUpdate, Memfd, OwnedFd, type SealName, Session } from 'liveupdate';

const U64_MAX = (1n << 64n) - 1n;
const ARG = ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE'];

/**
 * What each operation is documented to fail with (README, lib/errors.ts):
 * argument codes before any syscall, use after close, calls the direction
 * forbids, and the kernel's errnos for that ioctl. Anything else fails the run.
 */
const DOCUMENTED = {
  open: ['EBUSY'],
  create: [...ARG, 'ERR_CLOSED', 'EEXIST'],
  retrieveSession: [...ARG, 'ERR_CLOSED', 'ENOENT', 'EINVAL'],
  preserve: [...ARG, 'ERR_CLOSED', 'ERR_SESSION_CLOSED', 'EEXIST', 'EBADF', 'ENOENT', 'EBUSY', 'EOPNOTSUPP'],
  retrieveFd: [...ARG, 'ERR_SESSION_CLOSED', 'ERR_INVALID_STATE'],
  finish: ['ERR_SESSION_CLOSED', 'ERR_INVALID_STATE'],
  getName: ['ERR_SESSION_CLOSED'],
  addSeals: [...ARG, 'ERR_CLOSED', 'EPERM', 'EBUSY'],
  pass: ['ERR_CLOSED', 'ERR_SESSION_CLOSED'],
  from: ['ERR_INVALID_ARG_VALUE', 'ERR_CLOSED', 'ERR_SESSION_CLOSED'],
  detach: ['ERR_CLOSED', 'ERR_SESSION_CLOSED', 'ERR_INVALID_STATE'],
  close: [] as string[],
} as const;
type Op = keyof typeof DOCUMENTED;

// --- what is thrown at it --------------------------------------------------

const FIXED_NAMES = ['fz-a', 'fz-b', 'fz-c'];
const SPECIAL = ['\0', '\ud800', '\udfff', 'é', '😀', '/', ' ', '\n'];
const randomName = fc
  .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom(...SPECIAL), fc.constant('x'.repeat(31))), { maxLength: 6 })
  .map((parts) => `fz${parts.join('')}`);
const name = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FIXED_NAMES) },
  { weight: 3, arbitrary: randomName },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(64), `${'é'.repeat(32)}`, 'fz\0', 'fz\ud800') },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined), fc.object({ maxDepth: 0 })) },
);
const token = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1n, 2n, 7n, 0n, U64_MAX, 1, 2) },
  { weight: 2, arbitrary: fc.constantFrom(-1n, U64_MAX + 1n, -1, 0.5, 2 ** 53, NaN, Infinity, '1', null) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }) },
);
/** Which file to hand to preserve: one of ours (by index), a raw number, or a thing that is not a file. */
const fileRef = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('file' as const), i: fc.nat({ max: 7 }), raw: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('session' as const), i: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'device' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('number' as const), n: fc.constantFrom(-1, 2 ** 31, 1.5, 0x7fffffff) }) },
);
type FileRef = { k: 'file'; i: number; raw: boolean } | { k: 'session'; i: number } | { k: 'device' } | { k: 'number'; n: number };
const SEALS = ['seal', 'shrink', 'grow', 'write', 'future-write', 'exec', 'hugetlb', 'WRITE'] as SealName[];

type Action =
  | { a: 'open'; async: boolean }
  | { a: 'closeDevice' }
  | { a: 'create'; name: unknown; async: boolean }
  | { a: 'retrieveSession'; name: unknown; async: boolean }
  | { a: 'memfd'; async: boolean }
  | { a: 'preserve'; s: number; f: FileRef; token: unknown; async: boolean }
  | { a: 'retrieveFd'; s: number; token: unknown; async: boolean }
  | { a: 'finish'; s: number; async: boolean }
  | { a: 'getName'; s: number; async: boolean }
  | { a: 'addSeals'; f: number; seals: SealName[]; async: boolean }
  | { a: 'pass'; s: number }
  | { a: 'from'; s: number }
  | { a: 'close'; what: 'session' | 'file'; i: number }
  | { a: 'detach'; what: 'session' | 'file'; i: number }
  | { a: 'settle' };

const i = fc.nat({ max: 7 });
const async = fc.boolean();
const w = <T,>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
const action: fc.Arbitrary<Action> = fc.oneof(
  w(1, fc.record({ a: fc.constant('open' as const), async })),
  w(1, fc.constant({ a: 'closeDevice' as const })),
  w(5, fc.record({ a: fc.constant('create' as const), name, async })),
  w(2, fc.record({ a: fc.constant('retrieveSession' as const), name, async })),
  w(3, fc.record({ a: fc.constant('memfd' as const), async })),
  w(6, fc.record({ a: fc.constant('preserve' as const), s: i, f: fileRef, token, async })),
  w(2, fc.record({ a: fc.constant('retrieveFd' as const), s: i, token, async })),
  w(1, fc.record({ a: fc.constant('finish' as const), s: i, async })),
  w(2, fc.record({ a: fc.constant('getName' as const), s: i, async })),
  w(2, fc.record({ a: fc.constant('addSeals' as const), f: i, seals: fc.subarray(SEALS, { maxLength: 2 }), async })),
  w(1, fc.record({ a: fc.constant('pass' as const), s: i })),
  w(1, fc.record({ a: fc.constant('from' as const), s: i })),
  w(3, fc.record({ a: fc.constant('close' as const), what: fc.constantFrom('session' as const, 'file' as const), i })),
  w(1, fc.record({ a: fc.constant('detach' as const), what: fc.constantFrom('session' as const, 'file' as const), i })),
  w(2, fc.constant({ a: 'settle' as const })),
);

// --- the rules, stated independently of lib/validate.ts --------------------

const nameVerdict = (x: unknown): string => {
  if (typeof x !== 'string') return 'ERR_INVALID_ARG_TYPE';
  const bytes = Buffer.byteLength(x);
  return x.includes('\0') || bytes < 1 || bytes > 63 || /\p{Surrogate}/u.test(x) ? 'ERR_INVALID_ARG_VALUE' : 'ok';
};
const tokenVerdict = (x: unknown): string => {
  if (typeof x === 'bigint') return x >= 0n && x <= U64_MAX ? 'ok' : 'ERR_OUT_OF_RANGE';
  if (typeof x === 'number') return Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER ? 'ok' : 'ERR_OUT_OF_RANGE';
  return 'ERR_INVALID_ARG_TYPE';
};

// --- the world: what we made, and what the kernel must therefore say --------

interface S {
  obj: Session;
  name: string;
  closed: boolean;
  /** Closed while a Promise call was in flight: the kernel lets go when it settles. */
  closing: boolean;
  tokens: Set<bigint>;
}
interface F {
  obj: Memfd | OwnedFd;
  closed: boolean;
  /** The session this file is preserved in, shared by every fd of the file. */
  file: { in?: S; sealed: boolean };
}

class World {
  lu?: LiveUpdate;
  readonly sessions: S[] = [];
  readonly files: F[] = [];
  /** Numbers we closed: preserve on them is EBADF, or whatever got the number since. */
  readonly closedNumbers: number[] = [];
  readonly inflight: Promise<void>[] = [];
  /** Fds closed while a Promise call on them was in flight: closed for real after it settles, on the thread pool. */
  readonly closing: Array<{ fd: number; ino: number }> = [];
  readonly names = new Set<string>(FIXED_NAMES);
  calls = 0;
  /** Promise forms that threw instead of rejecting, by call. */
  readonly syncThrows = new Map<string, number>();

  get exact() {
    return this.inflight.length === 0 && !this.sessions.some((s) => s.closing);
  }

  /** One call: fails the run unless it did what was expected, or (inexact) failed with a documented code. */
  check(op: Op, what: string, expected: string | undefined, outcome: { ok: true } | { ok: false; err: unknown }): boolean {
    if (outcome.ok) {
      if (expected !== undefined && expected !== 'ok') throw new Error(`${what}: expected ${expected}, but it succeeded`);
      return true;
    }
    const e = outcome.err as { code?: unknown; message?: string };
    const code = typeof e?.code === 'string' ? e.code : undefined;
    if (!(outcome.err instanceof Error) || code === undefined || !(DOCUMENTED[op] as readonly string[]).includes(code)) {
      throw new Error(`${what}: undocumented failure ${String(code)}: ${e?.message ?? String(outcome.err)}`, { cause: outcome.err });
    }
    if (expected !== undefined && code !== expected) throw new Error(`${what}: expected ${expected}, got ${code}: ${e.message}`);
    return false;
  }

  sync<T>(op: Op, what: string, expected: string | undefined, fn: () => T): { ok: true; value: T } | { ok: false } {
    this.calls++;
    try {
      const value = fn();
      this.check(op, what, expected, { ok: true });
      return { ok: true, value };
    } catch (err) {
      if ((err as Error)?.message?.startsWith(`${what}: `)) throw err;
      this.check(op, what, expected, { ok: false, err });
      return { ok: false };
    }
  }

  /** A Promise call left in flight: may not throw synchronously; checked when it settles. */
  start<T>(op: Op, what: string, expected: string | undefined, fn: () => Promise<T>, onValue: (v: T) => void = () => {}): void {
    this.calls++;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      // Some Promise forms (Memfd.addSeals, FdSocket.send) check their
      // arguments before they make a Promise, as the host fuzz allows: the
      // same codes are required, and the count is reported.
      this.syncThrows.set(what, (this.syncThrows.get(what) ?? 0) + 1);
      this.check(op, what, expected, { ok: false, err });
      return;
    }
    const checked = p.then(
      (v) => {
        this.check(op, what, expected, { ok: true });
        onValue(v);
      },
      (err) => void this.check(op, what, expected, { ok: false, err }),
    );
    checked.catch(() => {}); // reported by settle(), not as an unhandled rejection
    this.inflight.push(checked);
  }

  /** Waits for every call in flight, and for the closes deferred behind them; then reports the first failure. */
  async settle(): Promise<void> {
    const failures: unknown[] = [];
    while (this.inflight.length > 0) {
      for (const r of await Promise.allSettled(this.inflight.splice(0))) if (r.status === 'rejected') failures.push(r.reason);
    }
    // A close deferred behind a Promise call runs on the thread pool once
    // the call settles: wait until each such number no longer names its file
    // (nothing here opens files meanwhile, so the number is not reused).
    // Session fds all share one anonymous inode, so a number that one of
    // our open objects holds now was closed and reused: done too.
    for (const c of this.closing.splice(0)) {
      while (sameFile(c.fd, c.ino) && !this.holds(c.fd)) await new Promise((resolve) => setImmediate(resolve));
    }
    for (const s of this.sessions) s.closing = false;
    if (failures.length > 0) throw failures[0];
  }

  /** Does an object of ours that is still open hold this number? */
  holds(fd: number): boolean {
    return [...this.sessions, ...this.files].some((m) => !m.closed && m.obj.fd === fd) || (this.lu !== undefined && !this.lu.closed && this.lu.fd === fd);
  }

  /** Closes an object; while calls are in flight its close may be deferred, so it is tracked until done. */
  close(obj: OwnedFd): number | undefined {
    const n = obj.closed ? undefined : obj.fd;
    const ino = n !== undefined && this.inflight.length > 0 ? fs.fstatSync(n).ino : undefined;
    obj.close();
    if (ino !== undefined) this.closing.push({ fd: n!, ino });
    return n;
  }

  session(k: number): S | undefined {
    return this.sessions.length ? this.sessions[k % this.sessions.length] : undefined;
  }
  file(k: number): F | undefined {
    return this.files.length ? this.files[k % this.files.length] : undefined;
  }
  /** What a raw fd number is now: one of our files, a session or the device (ENOENT), closed (EBADF), or unknown. */
  resolve(n: number): { file?: F; kernel?: string } {
    const file = this.files.find((f) => !f.closed && f.obj.fd === n);
    if (file) return { file, kernel: this.preserved(file) ? 'EBUSY' : 'ok' };
    if (this.sessions.some((s) => !s.closed && s.obj.fd === n) || (this.lu && !this.lu.closed && this.lu.fd === n)) return { kernel: 'ENOENT' };
    return { kernel: this.exact && this.closing.length === 0 && !fs.existsSync(`/proc/self/fd/${n}`) ? 'EBADF' : undefined };
  }

  /** Is this file preserved in a session that still holds it? */
  preserved(f: F): boolean {
    return f.file.in !== undefined && !f.file.in.closed;
  }

  addSession(obj: Session, nm: string) {
    this.names.add(nm);
    this.sessions.push({ obj, name: nm, closed: false, closing: false, tokens: new Set() });
  }

  async step(x: Action): Promise<void> {
    const lu = this.lu;
    switch (x.a) {
      case 'open': {
        if (lu && !lu.closed) {
          // Held by this very process: EBUSY names us.
          const r = this.sync('open', 'open while held', 'EBUSY', () => LiveUpdate.openSync());
          if (r.ok) r.value.close();
          return;
        }
        // The device is free, unless its close is still deferred behind a
        // call in flight (then it is still ours: EBUSY).
        const expected = this.closing.length > 0 ? undefined : 'ok';
        this.calls++;
        try {
          this.lu = x.async ? await LiveUpdate.open() : LiveUpdate.openSync();
        } catch (err) {
          this.check('open', 'open', expected, { ok: false, err });
        }
        return;
      }
      case 'closeDevice':
        this.sync('close', 'device close', 'ok', () => lu && this.close(lu));
        return;
      case 'create': {
        if (!lu) return;
        const verdict = nameVerdict(x.name);
        const nm = x.name as string;
        const taken = this.sessions.some((s) => s.name === nm && !s.closed);
        const expected =
          lu.closed ? (verdict === 'ok' ? 'ERR_CLOSED' : undefined)
          : verdict !== 'ok' ? verdict
          : !this.exact || !FIXED_NAMES.includes(nm) ? undefined
          : taken ? 'EEXIST' : 'ok';
        const refusal = lu.closed || verdict !== 'ok' ? expected : undefined;
        if (x.async) this.start('create', `createSession(${JSON.stringify(x.name)})`, refusal, () => lu.createSession(nm), (s) => this.addSession(s, nm));
        else {
          const r = this.sync('create', `createSessionSync(${JSON.stringify(x.name)})`, expected, () => lu.createSessionSync(nm));
          if (r.ok) this.addSession(r.value, nm);
        }
        return;
      }
      case 'retrieveSession': {
        if (!lu) return;
        const verdict = nameVerdict(x.name);
        // A first boot was handed nothing: every valid name is ENOENT.
        const expected = lu.closed ? (verdict === 'ok' ? 'ERR_CLOSED' : undefined) : verdict !== 'ok' ? verdict : 'ENOENT';
        const nm = x.name as string;
        if (x.async) this.start('retrieveSession', 'retrieveSession', expected, () => lu.retrieveSession(nm), (s) => s.close());
        else {
          const r = this.sync('retrieveSession', 'retrieveSessionSync', expected, () => lu.retrieveSessionSync(nm));
          if (r.ok) r.value.close();
        }
        return;
      }
      case 'memfd': {
        const add = (m: Memfd) => this.files.push({ obj: m, closed: false, file: { sealed: false } });
        if (x.async) this.start('close', 'Memfd.create', 'ok', () => Memfd.create('fz'), add);
        else {
          const r = this.sync('close', 'Memfd.createSync', 'ok', () => Memfd.createSync('fz'));
          if (r.ok) add(r.value);
        }
        return;
      }
      case 'preserve': {
        const s = this.session(x.s);
        if (!s) return;
        const tv = tokenVerdict(x.token);
        let arg: unknown;
        let kernel: string | undefined; // what the kernel answers for this file, when known
        let early: string | undefined; // what the library answers first
        let target: F | undefined;
        const ref = x.f;
        if (ref.k === 'file' && !ref.raw) {
          target = this.file(ref.i);
          if (!target) return;
          arg = target.obj;
          early = target.closed ? 'ERR_CLOSED' : undefined;
          kernel = this.preserved(target) ? 'EBUSY' : 'ok';
        } else if (ref.k === 'file') {
          // A raw number: one of our files, or one we closed (EBADF, or whatever has the number now).
          const f = this.file(ref.i);
          if (!f) return;
          const n = f.closed ? this.closedNumbers.at(-1) : f.obj.fd;
          if (n === undefined) return;
          arg = n;
          const r = this.resolve(n);
          target = r.file;
          kernel = r.kernel;
        } else if (ref.k === 'session') {
          const other = this.session(ref.i)!;
          arg = other.obj;
          early = other.closed ? 'ERR_SESSION_CLOSED' : undefined;
          kernel = 'ENOENT'; // LUO has no handler for its own files
        } else if (ref.k === 'device') {
          if (!lu) return;
          arg = lu;
          early = lu.closed ? 'ERR_CLOSED' : undefined;
          kernel = 'ENOENT';
        } else {
          arg = ref.n;
          early = Number.isInteger(ref.n) && ref.n >= 0 && ref.n <= 0x7fffffff ? undefined : 'ERR_OUT_OF_RANGE';
          kernel = 'EBADF'; // 2^31-1 is never open here
        }
        const tokenUsed = tv === 'ok' && s.tokens.has(BigInt(x.token as bigint));
        // The kernel checks the token first; the Promise form duplicates the file before it asks.
        if (tokenUsed) kernel = x.async && kernel === 'EBADF' ? 'EBADF' : 'EEXIST';
        // Several refusals at once: the library picks one, any is right.
        const refusals = [early, tv !== 'ok' ? tv : undefined, s.closed ? 'ERR_SESSION_CLOSED' : undefined].filter((c) => c !== undefined);
        const expected = refusals.length > 1 ? undefined : refusals.length === 1 ? refusals[0] : this.exact ? kernel : undefined;
        const done = () => {
          s.tokens.add(BigInt(x.token as bigint));
          if (target && !target.closed) target.file.in = s;
        };
        // A Promise form's kernel answer depends on what runs before its worker: only refusals are certain.
        // It duplicates the file before it looks at the session, so a closed number may be EBADF first.
        const dupMayFail = (ref.k === 'file' && ref.raw) || ref.k === 'number';
        const asyncExpected = refusals.length === 1 && !(refusals[0] === 'ERR_SESSION_CLOSED' && dupMayFail) ? refusals[0] : undefined;
        if (x.async) this.start('preserve', 'preserve', asyncExpected, () => s.obj.preserve(arg as number, x.token as bigint), done);
        else if (this.sync('preserve', 'preserveSync', expected, () => s.obj.preserveSync(arg as number, x.token as bigint)).ok) done();
        return;
      }
      case 'retrieveFd': {
        const s = this.session(x.s);
        if (!s) return;
        const tv = tokenVerdict(x.token);
        const refusals = ['ERR_INVALID_STATE', tv !== 'ok' ? tv : undefined, s.closed ? 'ERR_SESSION_CLOSED' : undefined].filter((c) => c !== undefined);
        const expected = refusals.length === 1 ? refusals[0] : undefined;
        if (x.async) this.start('retrieveFd', 'retrieve', expected, () => s.obj.retrieve(x.token as bigint), (fd) => fd.close());
        else {
          const r = this.sync('retrieveFd', 'retrieveSync', expected, () => s.obj.retrieveSync(x.token as bigint));
          if (r.ok) r.value.close();
        }
        return;
      }
      case 'finish': {
        const s = this.session(x.s);
        if (!s) return;
        const expected = s.closed ? undefined : 'ERR_INVALID_STATE';
        if (x.async) this.start('finish', 'finish', expected, () => s.obj.finish());
        else this.sync('finish', 'finishSync', expected, () => s.obj.finishSync());
        return;
      }
      case 'getName': {
        const s = this.session(x.s);
        if (!s) return;
        const expected = s.closed ? 'ERR_SESSION_CLOSED' : 'ok';
        const same = (got: string) => {
          if (got !== s.name) throw new Error(`getName: the kernel says ${JSON.stringify(got)}, the session was created as ${JSON.stringify(s.name)}`);
        };
        if (x.async) this.start('getName', 'getName', expected, () => s.obj.getName(), same);
        else {
          const r = this.sync('getName', 'getNameSync', expected, () => s.obj.getNameSync());
          if (r.ok) same(r.value);
        }
        return;
      }
      case 'addSeals': {
        const f = this.file(x.f);
        if (!f || !(f.obj instanceof Memfd)) return;
        const m = f.obj;
        const unknown = x.seals.some((k) => !['seal', 'shrink', 'grow', 'write', 'future-write', 'exec'].includes(k));
        const refusals = [f.closed ? 'ERR_CLOSED' : undefined, unknown ? 'ERR_INVALID_ARG_VALUE' : undefined].filter((c) => c !== undefined);
        const expected = refusals.length > 1 ? undefined : refusals.length === 1 ? refusals[0] : !this.exact ? undefined : f.file.sealed ? 'EPERM' : 'ok';
        const done = () => (f.file.sealed ||= x.seals.includes('seal'));
        if (x.async) this.start('addSeals', 'addSeals', refusals.length === 1 ? refusals[0] : undefined, () => m.addSeals(x.seals), done);
        else if (this.sync('addSeals', 'addSealsSync', expected, () => m.addSealsSync(x.seals)).ok) done();
        return;
      }
      case 'pass': {
        // A session fd over SCM_RIGHTS, adopted on the other side: same name, outgoing.
        const s = this.session(x.s);
        if (!s) return;
        const [a, b] = FdSocket.pair();
        try {
          this.calls++;
          // send() checks its fds and duplicates them before it returns its
          // Promise, so a closed session is refused synchronously.
          try {
            await a.send('session', [s.obj]);
          } catch (err) {
            this.check('pass', 'send(session)', s.closed ? 'ERR_SESSION_CLOSED' : undefined, { ok: false, err });
            return;
          }
          if (s.closed && this.exact) throw new Error('send(session): a closed session was sent');
          const { fds } = await b.receive();
          this.calls += 2;
          using adopted = new Session(fds[0]!);
          if (adopted.name !== s.name || adopted.direction !== 'outgoing') throw new Error(`adopted ${adopted.direction} ${JSON.stringify(adopted.name)} for ${JSON.stringify(s.name)}`);
        } finally {
          a.close();
          b.close();
        }
        return;
      }
      case 'from': {
        // Memfd.from on a session refuses, and takes nothing.
        const s = this.session(x.s);
        if (!s) return;
        this.sync('from', 'Memfd.from(session)', s.closed ? 'ERR_SESSION_CLOSED' : 'ERR_INVALID_ARG_VALUE', () => Memfd.from(s.obj));
        if (!s.closed && s.obj.closed) throw new Error('Memfd.from refused a session but closed it');
        return;
      }
      case 'close': {
        const m = x.what === 'session' ? this.session(x.i) : this.file(x.i);
        if (!m) return;
        const wasOpen = !m.closed;
        const deferred = wasOpen && this.inflight.length > 0;
        let n: number | undefined;
        this.sync('close', `${x.what} close`, 'ok', () => (n = this.close(m.obj))); // a second close does nothing
        m.closed = true;
        if (n !== undefined) this.closedNumbers.push(n);
        if (deferred && x.what === 'session') (m as S).closing = true;
        return;
      }
      case 'detach': {
        const m = x.what === 'session' ? this.session(x.i) : this.file(x.i);
        if (!m) return;
        const closedCode = x.what === 'session' ? 'ERR_SESSION_CLOSED' : 'ERR_CLOSED';
        const expected = m.closed ? closedCode : this.inflight.length === 0 ? 'ok' : undefined;
        const r = this.sync('detach', `${x.what} detach`, expected, () => m.obj.detach());
        if (r.ok) {
          m.closed = true;
          fs.closeSync(r.value); // the raw number is ours now
          this.closedNumbers.push(r.value);
        }
        return;
      }
      case 'settle':
        await this.settle();
        return;
    }
  }

  /** Closes everything, after the calls in flight; then reports what failed in flight, if anything. */
  async closeAll(): Promise<void> {
    let failure: unknown;
    await this.settle().catch((err) => (failure ??= err));
    for (const m of [...this.sessions, ...this.files]) m.obj.close();
    this.lu?.close();
    if (failure !== undefined) throw failure;
  }
}

// --- invariants --------------------------------------------------------------

function sameFile(fd: number, ino: number): boolean {
  try {
    return fs.fstatSync(fd).ino === ino;
  } catch {
    return false;
  }
}

function fdTable(): Map<number, string> {
  const table = new Map<number, string>();
  for (const n of fs.readdirSync('/proc/self/fd')) {
    try {
      table.set(Number(n), fs.readlinkSync(`/proc/self/fd/${n}`));
    } catch {
      // the directory's own fd, gone by now
    }
  }
  return table;
}

function expectFdTable(baseline: Map<number, string>, when: string): void {
  const now = fdTable();
  const opened = [...now].filter(([n, what]) => baseline.get(n) !== what).map(([n, what]) => `${n} -> ${what}`);
  const lost = [...baseline].filter(([n, what]) => now.get(n) !== what).map(([n, what]) => `${n} -> ${what}`);
  if (opened.length || lost.length) throw new Error(`fds changed ${when}: opened [${opened.join(', ')}], lost [${lost.join(', ')}]`);
}

/** A memfd opened before the runs: a double close anywhere would close its number or give it to another file. */
function canary() {
  const TEXT = 'canary: still the same file';
  const fd = Memfd.createSync('fz-canary').detach();
  fs.writeSync(fd, TEXT, 0);
  const { ino, dev } = fs.fstatSync(fd);
  return {
    check(when: string) {
      const st = fs.fstatSync(fd);
      const buf = Buffer.alloc(TEXT.length);
      fs.readSync(fd, buf, 0, buf.length, 0);
      if (st.ino !== ino || st.dev !== dev || buf.toString() !== TEXT) throw new Error(`the canary fd ${fd} is another file ${when}`);
    },
    close: () => fs.closeSync(fd),
  };
}

export interface GuestFuzzReport {
  calls: number;
  /** Promise-form calls that threw synchronously (with a documented code) instead of rejecting. */
  syncThrows: Record<string, number>;
  sequences: number;
  seed: number;
}

/**
 * Runs the property for `numRuns` sequences on /dev/liveupdate (the device
 * must be free). FUZZ_SEED replays a run. Resolves with the count and seed;
 * a failure is shrunk and its message carries the seed and path.
 */
export async function fuzzRealDevice(numRuns = 50): Promise<GuestFuzzReport> {
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  console.log(`guest fuzz: seed ${seed}, ${numRuns} sequences`);
  const crashes: unknown[] = [];
  const onCrash = (e: unknown) => crashes.push(e);
  process.on('unhandledRejection', onCrash);
  process.on('uncaughtException', onCrash);
  const bird = canary();
  const baseline = fdTable();
  let calls = 0;
  let sequences = 0;
  const syncThrows: Record<string, number> = {};
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 10, maxLength: 40 }), async (actions) => {
        crashes.length = 0; // per run, so shrinking stays honest
        const world = new World();
        try {
          await world.step({ a: 'open', async: false });
          for (const x of actions) await world.step(x);
          await world.closeAll();
        } finally {
          await world.closeAll().catch(() => {}); // after a failure: nothing may be left for the next sequence
          calls += world.calls;
          sequences++;
          for (const [k, n] of world.syncThrows) syncThrows[k] = (syncThrows[k] ?? 0) + n;
        }
        expectFdTable(baseline, 'after a sequence');
        bird.check('after a sequence');
        if (crashes.length) throw new Error(`unhandled: ${String((crashes[0] as Error)?.stack ?? crashes[0])}`);
        // Nothing left in the kernel: every name this sequence used can be created again.
        using lu = LiveUpdate.openSync();
        for (const nm of world.names) lu.createSessionSync(nm).close();
      }),
      { seed, numRuns, verbose: 0, includeErrorInReport: true },
    );
  } finally {
    process.off('unhandledRejection', onCrash);
    process.off('uncaughtException', onCrash);
    bird.close();
    console.log(`guest fuzz: ${calls} calls in ${sequences} sequences (seed ${seed}); Promise forms that threw instead of rejecting: ${JSON.stringify(syncThrows)}`);
  }
  return { calls, sequences, seed, syncThrows };
}
