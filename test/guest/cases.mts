// Kernel-facing cases, run inside the VM on a real LUO kernel. Stage 1 runs
// on first boot and ends by keeping sessions open through a real kexec;
// stage 2 runs in the new kernel and takes them back. The host reports
// each case as its own test (test/vm/kernel.test.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { LiveUpdate, LiveUpdateError, Memfd, Session, kexec, type SealName } from 'liveupdate';
import type { Binding } from '../../types/binding.js';
import { main as cli } from '../../dist/cli/main.js';
import type { Io } from '../../dist/cli/io.js';
import * as faults from './faults.mjs';
import { createSuite } from './harness.mjs';

/** What the cases of one stage share; `kept` sessions stay open through the kexec. */
export interface GuestContext {
  kept: Session[];
  lu?: LiveUpdate;
  ram?: Session;
}

export const suite = createSuite<GuestContext>();
const { stage1, stage2 } = suite;
const require = createRequire(import.meta.url);
// The raw addon, to show what the kernel itself answers where the library refuses first.
const binding = require('node-gyp-build')(new URL('../..', import.meta.url).pathname) as Binding;
const op = binding.ioctlLayout;

// What stage 1 keeps and stage 2 expects.
const U64_MAX = (1n << 64n) - 1n;
const RAM = { session: 'vm-ram', token: U64_MAX, size: 1 << 20, position: 12345, seals: ['shrink', 'grow'] as SealName[] };
const EMPTY = { token: 0n };
const MANY = { session: 'many-files', count: 16, firstToken: 100 };
const LONG_NAME = `${'é'.repeat(31)}x`; // 63 bytes of UTF-8
const ADOPTED = 'adopted-elsewhere';
const CLOSED = 'closed-after-retrieve';
const REUSED = { session: 'reused-number', token: 1 };
// Sizes around a page and a large one, sealed and not, each read part-way so the file position is not 0.
const SIZES = { session: 'sizes', bytes: [0, 1, 4095, 4096, 4097, 64 << 20] };
const sizeCases = SIZES.bytes.flatMap((size, i) =>
  [false, true].map((sealed) => ({ size, sealed, token: 1000 + i * 2 + (sealed ? 1 : 0), position: Math.floor(size / 3), seed: i })),
);

function pattern(size: number, seed: number): Buffer {
  const block = Buffer.alloc(4096);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + seed) & 0xff;
  const buf = Buffer.alloc(size);
  for (let off = 0; off < size; off += block.length) block.copy(buf, off);
  return buf;
}

/** Sequences of 10 to 40 actions: about 1 400 calls in about 40 s under emulation. */
export const FUZZ_RUNS = 120;

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

function readAll(fd: number): Buffer {
  const { size } = fs.fstatSync(fd);
  const buf = Buffer.alloc(size);
  fs.readSync(fd, buf, 0, size, 0); // pread: leaves the file position alone
  return buf;
}

type Coded = Error & { code?: string; operation?: string; errno?: number; syscall?: string; token?: bigint; direction?: string; holder?: { pid: number } };

function expectError(fn: () => unknown, code: string, operation?: string): Coded {
  try {
    fn();
  } catch (caught) {
    const err = caught as Coded;
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (operation) assert.equal(err.operation, operation);
    if (err instanceof LiveUpdateError) {
      assert.ok(err.message.startsWith(`${code}: `), err.message);
      assert.equal(typeof err.errno, 'number');
      assert.ok(err.errno < 0);
    }
    return err;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

async function expectRejection(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: Coded) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

function memfdWith(name: string, content: Buffer): Memfd {
  const m = Memfd.createSync(name);
  fs.writeSync(m.fd, content, 0, content.length, 0);
  return m;
}

// Runs the `liveupdate` command in this process (so it sees what we hold).
async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), env: process.env, procRoot: '/proc', sysRoot: '/sys' };
  const code = await cli(args, io);
  return { code, out, err };
}

// ---------------------------------------------------------------- stage 1

stage1('`liveupdate status` finds the device free and the boot parameters set', async () => {
  const { code, out } = await runCli('status', '--json');
  assert.equal(code, 0);
  const status = JSON.parse(out);
  assert.deepEqual(status.device.holders, []);
  assert.equal(status.device.present, true);
  assert.equal(status.cmdline.liveupdate, 'on');
  assert.deepEqual(status.preservable, ['memfd']);
  assert.deepEqual(status.problems, []);
});

stage1('`liveupdate status` names this process while it holds the device', async () => {
  using lu = LiveUpdate.openSync();
  const status = JSON.parse((await runCli('status', '--json')).out);
  assert.deepEqual(status.device.holders, [{ pid: process.pid, command: 'node' }]);
  assert.ok(lu.fd >= 0);
});

stage1('the device opens read-write and closes', () => {
  const lu = LiveUpdate.openSync();
  assert.ok(lu.fd >= 0);
  assert.match(fs.readlinkSync(`/proc/self/fd/${lu.fd}`), /liveupdate/);
  lu.close();
  assert.equal(lu.closed, true);
  lu.close(); // idempotent
  expectError(() => lu.fd, 'ERR_CLOSED');
});

stage1('the device opens through the Promise form', async () => {
  const lu = await LiveUpdate.open();
  lu.close();
});

stage1('opening a file that is not the device is ENOTTY from the probe, and the device stays free', async () => {
  for (const file of ['/dev/null', '/dev/zero']) {
    const err = expectError(() => LiveUpdate.openSync(file), 'ENOTTY', 'LIVEUPDATE_OPEN');
    assert.equal(err.syscall, 'ioctl');
    await assert.rejects(LiveUpdate.open(file), { code: 'ENOTTY' });
  }
  using lu = LiveUpdate.openSync(); // the real device passes the same probe
  assert.ok(lu.fd >= 0);
});

stage1('a second open in the same process is EBUSY', () => {
  using lu = LiveUpdate.openSync();
  const err = expectError(() => LiveUpdate.openSync(), 'EBUSY', 'LIVEUPDATE_OPEN');
  assert.equal(err.syscall, 'open');
  assert.equal(err.holder?.pid, process.pid);
  assert.ok(lu.fd >= 0);
});

stage1('EBUSY on open names the other process holding the device', async () => {
  const entry = new URL('../../dist/index.js', import.meta.url).pathname;
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(entry)}).LiveUpdate.openSync(); console.log('holding'); setInterval(() => {}, 1000)`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    });
    const err = expectError(() => LiveUpdate.openSync(), 'EBUSY', 'LIVEUPDATE_OPEN');
    assert.equal(err.holder?.pid, child.pid);
    assert.match(err.message, new RegExp(`held by pid ${child.pid} \\(node\\)`));
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
});

stage1('sessions: create, duplicate name is EEXIST, distinct names coexist', () => {
  using lu = LiveUpdate.openSync();
  using a = lu.createSessionSync('dup-test');
  assert.equal(a.direction, 'outgoing');
  assert.equal(a.name, 'dup-test');
  const err = expectError(() => lu.createSessionSync('dup-test'), 'EEXIST', 'LIVEUPDATE_IOCTL_CREATE_SESSION');
  assert.match(err.message, /a session named "dup-test" already exists/);
  using b = lu.createSessionSync('dup-test-2');
  assert.notEqual(a.fd, b.fd);
});

stage1('a session name is free again once its session is closed', () => {
  using lu = LiveUpdate.openSync();
  lu.createSessionSync('reused').close();
  lu.createSessionSync('reused').close();
});

stage1('the kernel reports session names, 63-byte UTF-8 names included', async () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync(`${LONG_NAME.slice(0, -1)}y`);
  assert.equal(Buffer.byteLength(s.name), 63);
  assert.equal(s.getNameSync(), s.name);
  assert.equal(await s.getName(), s.name);
});

stage1('preserves one memfd', () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('preserve-one');
  using m = memfdWith('one', Buffer.from('hello'));
  s.preserveSync(m, 1);
});

stage1('preserves many memfds, sync and Promise forms', async () => {
  using lu = await LiveUpdate.open();
  using s = await lu.createSession('preserve-many');
  const memfds = Array.from({ length: 8 }, (_, i) => memfdWith(`m${i}`, Buffer.from(`file ${i}`)));
  try {
    for (let i = 0; i < 4; i++) s.preserveSync(memfds[i]!, i);
    await Promise.all(memfds.slice(4).map((m, i) => s.preserve(m, 4 + i)));
  } finally {
    for (const m of memfds) m.close();
  }
});

stage1('preserving a 512 MiB memfd through the Promise form leaves the event loop running', async () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('big');
  using m = Memfd.createSync('big', { size: 512 << 20 });
  let turns = 0;
  let spinning = true;
  const spin = () => {
    turns++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  await s.preserve(m, 1); // the kernel allocates and pins all 131072 pages here
  spinning = false;
  assert.ok(turns > 0, 'the event loop did not turn while the kernel pinned the memfd');
});

stage1('preserving a file that is not a memfd is ENOENT', () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('unsupported');
  const fd = fs.openSync('/dev/null', 'r');
  try {
    const err = expectError(() => s.preserveSync(fd, 1), 'ENOENT', 'LIVEUPDATE_SESSION_PRESERVE_FD');
    assert.match(err.message, /cannot preserve/);
  } finally {
    fs.closeSync(fd);
  }
});

stage1('a memfd in two sessions is EBUSY', () => {
  using lu = LiveUpdate.openSync();
  using a = lu.createSessionSync('double-a');
  using b = lu.createSessionSync('double-b');
  using m = memfdWith('double', Buffer.from('x'));
  a.preserveSync(m, 1);
  expectError(() => b.preserveSync(m, 2), 'EBUSY', 'LIVEUPDATE_SESSION_PRESERVE_FD');
  expectError(() => a.preserveSync(m, 3), 'EBUSY', 'LIVEUPDATE_SESSION_PRESERVE_FD');
});

stage1('a token used twice in one session is EEXIST', async () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('dup-token');
  using m1 = memfdWith('t1', Buffer.from('1'));
  using m2 = memfdWith('t2', Buffer.from('2'));
  s.preserveSync(m1, 7n);
  const err = expectError(() => s.preserveSync(m2, 7), 'EEXIST', 'LIVEUPDATE_SESSION_PRESERVE_FD');
  assert.equal(err.token, 7n);
  await expectRejection(s.preserve(m2, 7), 'EEXIST');
});

stage1('closing an outgoing session unpreserves its files', () => {
  using lu = LiveUpdate.openSync();
  using m = memfdWith('released', Buffer.from('x'));
  const first = lu.createSessionSync('unpreserve-a');
  first.preserveSync(m, 1);
  first.close();
  using second = lu.createSessionSync('unpreserve-b');
  second.preserveSync(m, 1); // not EBUSY: the first session let go of it
});

stage1('retrieve and finish on an outgoing session are refused before the syscall', () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('outgoing-only');
  const err = expectError(() => s.retrieveSync(1), 'ERR_INVALID_STATE');
  assert.equal(err.direction, 'outgoing');
  expectError(() => s.finishSync(), 'ERR_INVALID_STATE');
  // ...and the kernel agrees: both are EINVAL on an outgoing session.
  expectError(() => binding.ioctlSync(s.fd, op.LIVEUPDATE_SESSION_RETRIEVE_FD.index, 1n), 'EINVAL');
  expectError(() => binding.ioctlSync(s.fd, op.LIVEUPDATE_SESSION_FINISH.index), 'EINVAL');
});

stage1('retrieving a session in a kernel that was not live-updated is ENOENT', () => {
  using lu = LiveUpdate.openSync();
  expectError(() => lu.retrieveSessionSync('nothing-was-kept'), 'ENOENT', 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION');
});

stage1('an adopted session fd reads its name back and is found to be outgoing', () => {
  using lu = LiveUpdate.openSync();
  const raw = lu.createSessionSync('adopt-me').detach();
  using s = new Session(raw);
  assert.equal(s.name, 'adopt-me');
  assert.equal(s.direction, 'outgoing');
  using m = memfdWith('adopted', Buffer.from('x'));
  s.preserveSync(m, 1);
});

stage1('adopting an fd that is not a session is ENOTTY and leaves the fd alone', () => {
  using m = Memfd.createSync('not-a-session');
  const err = expectError(() => new Session(m.fd), 'ENOTTY', 'LIVEUPDATE_SESSION_GET_NAME');
  assert.match(err.message, /is not a LUO session/);
  assert.equal(m.closed, false);
  fs.fstatSync(m.fd);
});

stage1('LUO ioctls on a memfd are ENOTTY', () => {
  using m = Memfd.createSync('not-luo');
  expectError(() => binding.ioctlSync(m.fd, op.LIVEUPDATE_IOCTL_CREATE_SESSION.index, 'x'), 'ENOTTY');
});

stage1('the device refuses session ioctls, and sessions refuse device ioctls', () => {
  using lu = LiveUpdate.openSync();
  using s = lu.createSessionSync('wrong-fd');
  expectError(() => binding.ioctlSync(lu.fd, op.LIVEUPDATE_SESSION_GET_NAME.index), 'EINVAL');
  expectError(() => binding.ioctlSync(s.fd, op.LIVEUPDATE_IOCTL_CREATE_SESSION.index, 'y'), 'EINVAL');
});

stage1('kexec: loading a file that is not a kernel is refused', () => {
  const err = expectError(() => kexec.loadSync({ kernel: '/etc/hostname', cmdline: '' }), 'ENOEXEC', 'KEXEC_FILE_LOAD');
  assert.equal(err.syscall, 'kexec_file_load');
});

// Faults (test/guest/faults.mts) and the fuzz (test/guest/fuzz.mts): before
// the sessions below are kept, and long before the stage loads the kernel
// it kexecs into (kexecWithNothingLoaded unloads whatever is loaded).

stage1('fault: kexec with nothing loaded is EINVAL naming REBOOT_KEXEC, sync and Promise forms; the process and the machine carry on', faults.kexecWithNothingLoaded);

stage1('fault: a hugetlb memfd is refused by LUO (ENOENT or EOPNOTSUPP naming LIVEUPDATE_SESSION_PRESERVE_FD); the session and the token stay usable', faults.hugetlbMemfdIsRefused);

stage1('fault: unknown seal names are refused before fcntl (ERR_INVALID_ARG_VALUE); the memfd keeps its seals', faults.unknownSealsAreRefused);

stage1('fault: RLIMIT_NOFILE exhausted mid-way: EMFILE naming each operation, no fd leaked, nothing half-made in the kernel', faults.fdLimitExhausted);

stage1('fault: the session holder killed with SIGKILL: the device is free again and a new holder creates the same session', faults.sessionHolderKilled);

// Imported here, not at the top: loading fast-check over 9p under emulation
// takes seconds, and stage 2 (which imports this file too) has no use for it.
stage1(`fuzz: ${FUZZ_RUNS} random call sequences on the real device: documented codes only, fds back to baseline, canary intact, no session left behind`, async () =>
  (await import('./fuzz.mjs')).fuzzRealDevice(FUZZ_RUNS),
);

// The sessions below are kept open through the kexec (ctx.kept).

stage1(`keep: ${RAM.session} with a 1 MiB memfd (u64-max token, position, seals) and an empty one`, (ctx) => {
  const lu = LiveUpdate.openSync();
  const s = lu.createSessionSync(RAM.session);
  lu.close(); // sessions outlive the device fd
  const ram = memfdWith('guest-ram', pattern(RAM.size, 7));
  fs.readSync(ram.fd, Buffer.alloc(RAM.position), 0, RAM.position, null); // moves the file position
  ram.addSealsSync(RAM.seals);
  s.preserveSync(ram, RAM.token);
  const empty = Memfd.createSync('empty', { allowSealing: false });
  s.preserveSync(empty, EMPTY.token);
  ram.close(); // the session holds its own reference
  empty.close();
  ctx.kept.push(s);
});

stage1(`keep: ${MANY.session} with ${MANY.count} memfds preserved through the Promise form`, async (ctx) => {
  using lu = LiveUpdate.openSync();
  const s = await lu.createSession(MANY.session);
  for (let i = 0; i < MANY.count; i++) {
    using m = memfdWith(`f${i}`, pattern(4096 * (i + 1), i));
    await s.preserve(m, MANY.firstToken + i);
  }
  ctx.kept.push(s);
});

stage1('keep: a session with a 63-byte name, one adopted elsewhere, one to close after retrieval', (ctx) => {
  using lu = LiveUpdate.openSync();
  for (const name of [LONG_NAME, ADOPTED, CLOSED]) {
    const s = lu.createSessionSync(name);
    using m = memfdWith(name, Buffer.from(name));
    s.preserveSync(m, 1);
    ctx.kept.push(s);
  }
});

stage1('keep: preserve() closed and its number reused before the worker runs still preserves the file it was given', async (ctx) => {
  using lu = LiveUpdate.openSync();
  const s = lu.createSessionSync(REUSED.session);
  const mine = memfdWith('mine', Buffer.from('the file the caller meant'));
  const n = mine.fd;
  const preserving = s.preserve(mine, REUSED.token);
  mine.close();
  using theirs = memfdWith('theirs', Buffer.from('another file that got the same number'));
  assert.equal(theirs.fd, n);
  await preserving;
  s.preserveSync(theirs, REUSED.token + 1); // EBUSY had it been preserved under the caller's token
  ctx.kept.push(s);
});

stage1(`keep: ${SIZES.session}: memfds of ${SIZES.bytes.join(', ')} bytes, sealed and unsealed, positions part-way`, async (ctx) => {
  using lu = LiveUpdate.openSync();
  const s = await lu.createSession(SIZES.session);
  for (const c of sizeCases) {
    using m = memfdWith(`size-${c.size}`, pattern(c.size, c.seed));
    fs.readSync(m.fd, Buffer.alloc(c.position), 0, c.position, null);
    if (c.sealed) m.addSealsSync(['write', 'shrink', 'grow', 'seal']);
    await s.preserve(m, c.token);
  }
  ctx.kept.push(s);
});

stage1('`liveupdate sessions` lists every kept session with its full name and holder', async () => {
  const { code, out } = await runCli('sessions', '--json');
  assert.equal(code, 0);
  const mine = JSON.parse(out).filter((s: { pid: number }) => s.pid === process.pid).map((s: { name: string }) => s.name).sort();
  assert.deepEqual(mine, [RAM.session, MANY.session, LONG_NAME, ADOPTED, CLOSED, REUSED.session, SIZES.session].sort());
});

// ---------------------------------------------------------------- stage 2

stage2(`retrieves ${RAM.session}: an incoming session with the name it was kept under`, (ctx) => {
  ctx.lu = LiveUpdate.openSync();
  const s = ctx.lu.retrieveSessionSync(RAM.session);
  assert.equal(s.direction, 'incoming');
  assert.equal(s.getNameSync(), RAM.session);
  ctx.ram = s;
});

stage2('`liveupdate sessions` shows the retrieved session under this process', async () => {
  const sessions = JSON.parse((await runCli('sessions', '--json')).out);
  assert.ok(sessions.some((s: { pid: number; name: string }) => s.pid === process.pid && s.name === RAM.session), JSON.stringify(sessions));
});

stage2('the u64-max token brings back contents, size, position and seals', (ctx) => {
  const m = Memfd.from(ctx.ram!.retrieveSync(RAM.token));
  try {
    assert.equal(fs.fstatSync(m.fd).size, RAM.size);
    assert.equal(sha(readAll(m.fd)), sha(pattern(RAM.size, 7)));
    const next = Buffer.alloc(1);
    fs.readSync(m.fd, next, 0, 1, null); // reads at the file position
    assert.equal(next[0], pattern(RAM.size, 7)[RAM.position]);
    assert.deepEqual(m.getSealsSync(), RAM.seals);
  } finally {
    m.close();
  }
});

stage2('a memfd made without allowSealing comes back empty and sealed against new seals', async (ctx) => {
  using fd = await ctx.ram!.retrieve(EMPTY.token);
  using m = Memfd.from(fd);
  assert.equal(fs.fstatSync(m.fd).size, 0);
  assert.deepEqual(await m.getSeals(), ['seal']);
});

stage2('an unknown token is ENOENT', async (ctx) => {
  const err = expectError(() => ctx.ram!.retrieveSync(42), 'ENOENT', 'LIVEUPDATE_SESSION_RETRIEVE_FD');
  assert.match(err.message, /holds no file with token 42/);
  await expectRejection(ctx.ram!.retrieve(43n), 'ENOENT');
});

stage2('preserving into a retrieved session is refused, and the kernel says EINVAL', (ctx) => {
  using m = Memfd.createSync('late');
  const err = expectError(() => ctx.ram!.preserveSync(m, 1), 'ERR_INVALID_STATE');
  assert.equal(err.direction, 'incoming');
  expectError(() => binding.ioctlSync(ctx.ram!.fd, op.LIVEUPDATE_SESSION_PRESERVE_FD.index, m.fd, 1n), 'EINVAL');
});

stage2('retrieving the same session twice is EINVAL', (ctx) => {
  const err = expectError(() => ctx.lu!.retrieveSessionSync(RAM.session), 'EINVAL', 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION');
  assert.match(err.message, /already retrieved/);
});

stage2(`finishes ${RAM.session}`, (ctx) => {
  ctx.ram!.finishSync();
  ctx.ram!.close();
});

stage2(`retrieves all ${MANY.count} files of ${MANY.session} with the Promise forms and finishes`, async (ctx) => {
  using s = await ctx.lu!.retrieveSession(MANY.session);
  const fds = await Promise.all(Array.from({ length: MANY.count }, (_, i) => s.retrieve(MANY.firstToken + i)));
  try {
    fds.forEach((fd, i) => assert.equal(sha(readAll(fd.fd)), sha(pattern(4096 * (i + 1), i)), `file ${i}`));
  } finally {
    for (const fd of fds) fd.close();
  }
  await s.finish();
});

stage2('the file preserve() was given comes back under its token, not the one that reused its number', (ctx) => {
  using s = ctx.lu!.retrieveSessionSync(REUSED.session);
  using mine = s.retrieveSync(REUSED.token);
  using theirs = s.retrieveSync(REUSED.token + 1);
  assert.equal(readAll(mine.fd).toString(), 'the file the caller meant');
  assert.equal(readAll(theirs.fd).toString(), 'another file that got the same number');
  s.finishSync();
});

stage2(`${SIZES.session}: every size comes back with the same hash, size, position and seals`, async (ctx) => {
  using s = await ctx.lu!.retrieveSession(SIZES.session);
  for (const c of sizeCases) {
    using m = Memfd.from(await s.retrieve(c.token));
    const what = `${c.size} bytes${c.sealed ? ', sealed' : ''}`;
    assert.equal(fs.fstatSync(m.fd).size, c.size, what);
    assert.equal(sha(readAll(m.fd)), sha(pattern(c.size, c.seed)), what);
    assert.deepEqual(m.getSealsSync(), c.sealed ? ['seal', 'shrink', 'grow', 'write'] : [], what);
    const rest = Buffer.alloc(c.size - c.position);
    assert.equal(fs.readSync(m.fd, rest, 0, rest.length, null), rest.length, `${what}: reads on from the kept position`);
    assert.ok(rest.equals(pattern(c.size, c.seed).subarray(c.position)), what);
    mapRetrieved(m, c, what);
  }
  s.finishSync();
});

// The retrieved memfds mapped (Memfd.mapSync): the sealed ones through the
// mapping with no copy, hashed while the memfd is still open and again after
// it is closed; the others refused, as the kernel would not stop them shrinking.
function mapRetrieved(m: Memfd, c: (typeof sizeCases)[number], what: string): void {
  if (!c.sealed) {
    expectError(() => m.mapSync(), 'ERR_INVALID_STATE');
    return;
  }
  if (c.size === 0) {
    expectError(() => m.mapSync(), 'ERR_INVALID_STATE'); // empty: nothing to map
    return;
  }
  expectError(() => m.mapSync({ writable: true }), 'ERR_INVALID_STATE'); // the write seal
  const mapping = m.mapSync();
  try {
    assert.equal(mapping.buffer.byteLength, c.size, what);
    assert.equal(sha(Buffer.from(mapping.buffer)), sha(pattern(c.size, c.seed)), `${what}: through the mapping`);
    if (c.size === 64 << 20) {
      // A window past the first page, and the mapping outliving its memfd.
      using tail = m.mapSync({ offset: 4096 * 3, length: 4096 * 2 });
      assert.ok(Buffer.from(tail.buffer).equals(pattern(c.size, c.seed).subarray(4096 * 3, 4096 * 5)), `${what}: a window`);
      m.close();
      assert.equal(sha(Buffer.from(mapping.buffer)), sha(pattern(c.size, c.seed)), `${what}: through the mapping, memfd closed`);
    }
  } finally {
    mapping.unmap();
  }
  assert.equal(mapping.buffer.byteLength, 0, what);
}

stage2('a 63-byte UTF-8 session name is retrieved by that name', (ctx) => {
  using s = ctx.lu!.retrieveSessionSync(LONG_NAME);
  assert.equal(s.getNameSync(), LONG_NAME);
  using fd = s.retrieveSync(1);
  assert.equal(readAll(fd.fd).toString(), LONG_NAME);
  s.finishSync();
});

stage2('an incoming session fd handed over raw is adopted as incoming', (ctx) => {
  const raw = ctx.lu!.retrieveSessionSync(ADOPTED).detach();
  using s = new Session(raw);
  assert.equal(s.name, ADOPTED);
  assert.equal(s.direction, 'incoming');
  using fd = s.retrieveSync(1);
  assert.equal(readAll(fd.fd).toString(), ADOPTED);
  s.finishSync();
});

stage2('closing an incoming session finishes it: it cannot be retrieved again', (ctx) => {
  const s = ctx.lu!.retrieveSessionSync(CLOSED);
  s.retrieveSync(1).close();
  s.close();
  expectError(() => ctx.lu!.retrieveSessionSync(CLOSED), 'ENOENT');
});

stage2('a session that was never kept is ENOENT', (ctx) => {
  const err = expectError(() => ctx.lu!.retrieveSessionSync('never-kept'), 'ENOENT');
  assert.match(err.message, /no session named "never-kept" was handed over/);
  ctx.lu!.close();
});
