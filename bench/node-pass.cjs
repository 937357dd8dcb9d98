// One pass of the Node side of `npm run bench`, in its own process (the LUO
// device can be open in one process only, and the C reference runs between
// passes). The same sequences as bench/luo-bench.c, through the public API
// of the library at LIB (a checkout with dist/ built), sync and Promise.
// Every loop runs untimed first (see timedRounds() and timed()), so the
// figures are of warm code, as in a long-running process.
// Prints one JSON line per operation: {"impl":"node-sync"|"node-promise",…}.
//
//   node bench/node-pass.cjs LIB stage1 SESSIONS FILES GETNAMES FLOOR
//   node bench/node-pass.cjs LIB retrieve MODE SESSION FILES [WARM-SESSION WARM-FILES] (WARM-SESSION-2 too)
//   node bench/node-pass.cjs LIB restore MODE SESSION FILES BYTES
//   node bench/node-pass.cjs LIB sweep-preserve MODE SIZES
//   node bench/node-pass.cjs LIB sweep-restore MODE PREFIX SIZES
// MODE: sync, promise (each call awaited), concurrent (Promise.all), and
// for sweep-restore mapsync (Memfd.mapSync instead of reads, when the
// library has it).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { SETTLE_MS, withLoopDelay } = require('./loop-delay.cjs');
const { filesFor, pattern, writePattern, windowsFor, windowSession } = require('./sweep.cjs');

const [lib, what, ...rest] = process.argv.slice(2);
const { LiveUpdate, Memfd } = require(path.resolve(lib, 'dist/index.js'));
const fstat = promisify(fs.fstat);
const open = promisify(fs.open);
const close = promisify(fs.close);
const read = promisify(fs.read);

const now = () => process.hrtime.bigint();
// A Promise call goes to the libuv pool and back: about a millisecond on the
// guest's one emulated CPU, Node core's own included. The long Promise loops
// (get_name, the floor) are capped at this, which keeps a pass to minutes.
const PROMISE_MAX = 1000;
// The middle value (upper middle of an even count); numbers or bigints.
function median(xs) {
  return [...xs].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))[Math.floor(xs.length / 2)];
}
function report(impl, op, n, ns, extra = {}) {
  process.stdout.write(`${JSON.stringify({ impl, op, n, ns: Number(ns), ...extra })}\n`);
}

// A Promise row: warmed once (half size: these loops are dominated by the
// thread hop, not by compiled code), then timed once.
async function timed(impl, op, n, run) {
  await run(Math.max(1, Math.floor(n / 2)), 'warm');
  // Settle, as bench/luo-bench.c does: the kernel's deferred work from the
  // warm-up (and from the process before) finishes before the clock starts.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const t = now();
  await run(n, 'timed');
  report(impl, op, n, now() - t);
}

// The sync rows, each { op, n, setup(tag) -> state, run(state), cleanup(state) }:
// every row is warmed with at least WARM_CALLS calls before any is timed
// (under emulation, with --single-threaded, V8 needs that many calls to
// settle: a library create+close ran ~3× slower right after 1000 calls than
// after 4000, and the library's preserve loop of 500 ran mostly 100–215 µs
// per call in its first four rounds and 38–59 after, while the addon's own
// stayed mostly at 46–62). Then ROUNDS rounds time each row once, in an order
// rotated per round and reversed every other round (so no row always runs
// right after the same one), after the same pause as C's; the median round
// is reported, the rounds beside it. Only run() is timed.
const ROUNDS = 5;
const WARM_CALLS = 2000;
async function timedRounds(rows) {
  for (const row of rows) {
    for (let done = 0; done < WARM_CALLS; done += row.n) {
      const state = row.setup(`warm${done}`);
      row.run(state);
      row.cleanup?.(state);
    }
  }
  const times = rows.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < rows.length; k++) {
      const rotated = (k + round) % rows.length;
      const i = round % 2 ? rows.length - 1 - rotated : rotated;
      const row = rows[i];
      const state = row.setup(`r${round}`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const t = now();
      row.run(state);
      times[i].push(Number(now() - t));
      row.cleanup?.(state);
    }
  }
  rows.forEach((row, i) => report('node-sync', row.op, row.n, median(times[i]), { rounds: times[i] }));
}

async function stage1(sessions, files, getnames, floor) {
  const lu = LiveUpdate.openSync();

  // The addon alone, without the library around it: what the native
  // crossing costs, apart from the library's own JavaScript.
  const binding = require(path.resolve(lib, 'dist/binding.js')).defaultBinding();
  // The addon's calling convention: since issue 8 the operation is an index
  // into its table and the inputs are positional; a --baseline library from
  // before takes the name and an object of arguments.
  const layout = binding.ioctlLayout;
  const indexed = typeof layout.LIVEUPDATE_SESSION_GET_NAME.index === 'number';
  const createRaw = indexed
    ? (name) => binding.ioctlSync(lu.fd, layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index, name)
    : (name) => binding.ioctlSync(lu.fd, 'LIVEUPDATE_IOCTL_CREATE_SESSION', { name }).fd;
  const getNameRaw = indexed
    ? (fd) => binding.ioctlSync(fd, layout.LIVEUPDATE_SESSION_GET_NAME.index)
    : (fd) => binding.ioctlSync(fd, 'LIVEUPDATE_SESSION_GET_NAME', {}).name;
  const preserveRaw = indexed
    ? (fd, target, token) => binding.ioctlSync(fd, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, target, token)
    : (fd, target, token) => binding.ioctlSync(fd, 'LIVEUPDATE_SESSION_PRESERVE_FD', { fd: target, token: BigInt(token) });

  // Preserve rows get a fresh session and memfds never preserved before
  // (as C does); both are let go after the round, untimed.
  const preserveSetup = (prefix) => (tag) => ({
    session: lu.createSessionSync(`${prefix}-${tag}`),
    memfds: Array.from({ length: files }, () => Memfd.createSync('bench')),
  });
  const preserveCleanup = ({ session, memfds }) => {
    session.close();
    for (const m of memfds) m.close();
  };
  // get_name asks one session, made once.
  const named = lu.createSessionSync('bench-get-name');
  const same = () => named;
  await timedRounds([
    {
      op: 'create-close-raw', n: sessions, setup: (tag) => tag,
      run: (tag) => { for (let i = 0; i < sessions; i++) binding.closeSync(createRaw(`bench-raw-${tag}-${i}`)); },
    },
    {
      op: 'create-close', n: sessions, setup: (tag) => tag,
      run: (tag) => { for (let i = 0; i < sessions; i++) lu.createSessionSync(`bench-js-${tag}-${i}`).close(); },
    },
    {
      op: 'preserve', n: files, setup: preserveSetup('bench-js-preserve'), cleanup: preserveCleanup,
      run: ({ session, memfds }) => { for (let i = 0; i < files; i++) session.preserveSync(memfds[i], i + 1); },
    },
    {
      op: 'preserve-raw', n: files, setup: preserveSetup('bench-raw-preserve'), cleanup: preserveCleanup,
      run: ({ session, memfds }) => {
        const fd = session.fd;
        for (let i = 0; i < files; i++) preserveRaw(fd, memfds[i].fd, i + 1);
      },
    },
    {
      op: 'get-name', n: getnames, setup: same,
      run: (s) => { for (let i = 0; i < getnames; i++) s.getNameSync(); },
    },
    {
      op: 'get-name-raw', n: getnames, setup: same,
      run: (s) => {
        const fd = s.fd;
        for (let i = 0; i < getnames; i++) getNameRaw(fd);
      },
    },
    {
      op: 'fstat', n: floor, setup: () => lu.fd,
      run: (fd) => { for (let i = 0; i < floor; i++) fs.fstatSync(fd); },
    },
    {
      op: 'open-close', n: floor, setup: () => '/dev/null',
      run: (file) => { for (let i = 0; i < floor; i++) fs.closeSync(fs.openSync(file, 'r')); },
    },
  ]);

  await timed('node-promise', 'create-close', sessions, async (n, tag) => {
    for (let i = 0; i < n; i++) (await lu.createSession(`bench-js-${tag}-${i}`)).close();
  });
  {
    const memfds = Array.from({ length: files }, () => Memfd.createSync('bench'));
    const used = [];
    await timed('node-promise', 'preserve', files, async (n, tag) => {
      // A fresh session per run: a memfd is preserved in one session only.
      const s = lu.createSessionSync(`bench-js-preserve-p-${tag}`);
      used.push(s);
      const list = tag === 'warm' ? Array.from({ length: n }, () => Memfd.createSync('warm')) : memfds;
      if (tag === 'warm') memfds.push(...list);
      for (let i = 0; i < n; i++) await s.preserve(list[i], i + 1);
    });
    for (const x of used) x.close();
    for (const m of memfds) m.close();
  }
  await timed('node-promise', 'get-name', Math.min(getnames, PROMISE_MAX), async (n) => {
    for (let i = 0; i < n; i++) await named.getName();
  });
  named.close();
  await timed('node-promise', 'fstat', Math.min(floor, PROMISE_MAX), async (n) => {
    for (let i = 0; i < n; i++) await fstat(lu.fd);
  });
  await timed('node-promise', 'open-close', Math.min(floor, PROMISE_MAX), async (n) => {
    for (let i = 0; i < n; i++) await close(await open('/dev/null', 'r'));
  });
  lu.close();
}

// After the kexec: each session is retrieved once, so the warm-up is two
// other sessions (WARM, of WARM-FILES empty memfds, then WARM-2 of FILES;
// retrieve-finish only), retrieved and finished untimed first, as
// bench/luo-bench.c does. The first gives V8 enough calls to optimize (see
// timedRounds); but the code it optimizes has seen only files, and the
// first Session to go through it after (that session's close) throws it
// away ("wrong map", --trace-deopt), so the second session is where it is
// optimized again, for both. Timed right after the first, the row had
// V8 compiling in it and ran ~4× the addon alone; after the second, as
// fast as the addon (a guest trace, 2026-11-26). The restore rows stay
// cold: they are the live update as a service sees it.
async function retrieve(op, mode, name, files, bytes, warm, warmFiles) {
  const lu = LiveUpdate.openSync();
  const pattern = Buffer.alloc(bytes + 256);
  for (let k = 0; k < pattern.length; k++) pattern[k] = k & 0xff;
  const buf = Buffer.alloc(bytes);
  const check = (i) => {
    if (!buf.equals(pattern.subarray(i & 0xff, (i & 0xff) + bytes))) throw new Error(`file ${i} differs`);
  };
  const impl = `node-${mode}`;
  // The sync form is a plain function, not a branch of this async one: V8
  // (Node 20's) compiles a loop on-stack much later in an async function
  // (host, --single-threaded --trace-osr, a loop making and closing
  // OwnedFds: a plain function's by 1500 iterations, an async one's only
  // between 2500 and 4000), so the 2000 warm-up calls left it interpreted.
  // Stage 1's rows, and C, loop in plain functions.
  const restoreAllSync = (sessionName, files) => {
    const s = lu.retrieveSessionSync(sessionName);
    for (let i = 0; i < files; i++) {
      const f = s.retrieveSync(i + 1);
      if (bytes) {
        if (fs.readSync(f.fd, buf, 0, bytes, 0) !== bytes) throw new Error('short read');
        check(i);
      }
      f.close();
    }
    s.finishSync();
    return s;
  };
  const restoreAll = async (sessionName, files) => {
    if (mode === 'sync') return restoreAllSync(sessionName, files);
    const s = await lu.retrieveSession(sessionName);
    for (let i = 0; i < files; i++) {
      const f = await s.retrieve(i + 1);
      if (bytes) {
        if ((await read(f.fd, buf, 0, bytes, 0)).bytesRead !== bytes) throw new Error('short read');
        check(i);
      }
      f.close();
    }
    await s.finish();
    return s;
  };
  if (warm) {
    (await restoreAll(warm, warmFiles)).close();
    (await restoreAll(`${warm}-2`, files)).close();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  }
  const t = now();
  const s = await restoreAll(name, files);
  report(impl, op, files, now() - t, warm ? { warm: true } : {});
  fromStart(impl, op);
  s.close();
  if (warm && mode === 'sync') {
    // Node core's floor in this boot and this process, made the same way:
    // as many native calls untimed first (a retrieve + close is two), then
    // as many timed as the row made. As bench/luo-bench.c does for C.
    // A plain function, for the same reason as restoreAllSync.
    const fstats = (n) => {
      for (let i = 0; i < n; i++) fs.fstatSync(lu.fd);
    };
    fstats(2 * (warmFiles + files));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const f = now();
    fstats(2 * files);
    report(impl, 'fstat', 2 * files, now() - f);
  }
  lu.close();
}

// The live update as a service sees it: from the moment its parent spawned
// it (BENCH_SPAWN_NS, CLOCK_MONOTONIC as process.hrtime) to every file
// retrieved, verified and the session finished: exec, Node's start-up and
// loading the library included, as in bench/luo-bench.c.
function fromStart(impl, op) {
  if (op !== 'restore-verify' || !process.env.BENCH_SPAWN_NS) return;
  report(impl, 'restore-from-start', 1, now() - BigInt(process.env.BENCH_SPAWN_NS));
}

// The sweeps open the device with the API of their form, as a user of
// that form would: a Promise form's LiveUpdate.open() runs on libuv's pool,
// which starts then (on first use), not in the first window; in a service
// the pool has long been started by its other work. bench/first-window.cjs
// measures the difference (a first 16 Promise preserves of 4 KiB, one at a
// time: a median stall of 26.5 ms after openSync, 14.4 after open(), in
// the guest). bench/luo-bench-uv.c opens on its pool likewise.
function openDevice(mode) {
  return mode === 'promise' || mode === 'concurrent' ? LiveUpdate.open() : LiveUpdate.openSync();
}

// Size sweep, stage 1: preserve filesFor(size) memfds of each size, already
// written, into a throwaway session (the stage-2 sessions are made by
// bench/guest.cjs: the device is open in one process at a time). Promise
// modes also report the event loop's longest stall meanwhile.
async function sweepPreserve(mode, sizes) {
  const lu = await openDevice(mode);
  const impl = `node-${mode}`;
  const run = async (size, tag) => {
    const count = filesFor(size);
    const data = pattern(size);
    const memfds = [];
    for (let i = 0; i < count; i++) {
      const m = Memfd.createSync('bench');
      writePattern(m.fd, data, i, size);
      memfds.push(m);
    }
    const name = `bsp-${mode}-${tag}-${size}`;
    const s = mode === 'sync' ? lu.createSessionSync(name) : await lu.createSession(name);
    const { eld, start, end } = await withLoopDelay(async () => {
      if (mode === 'sync') for (let i = 0; i < count; i++) s.preserveSync(memfds[i], i + 1);
      else if (mode === 'promise') for (let i = 0; i < count; i++) await s.preserve(memfds[i], i + 1);
      else await Promise.all(memfds.map((m, i) => s.preserve(m, i + 1)));
    });
    const ns = end - start;
    s.close();
    // The floor for the loop delay: Node core's own Promise-style call on
    // the same files, a read of each into a Buffer on the libuv pool, in
    // the same form (one at a time, or all at once).
    let floor;
    if (mode !== 'sync') {
      const bufs = Array.from({ length: mode === 'concurrent' ? count : 1 }, () => Buffer.allocUnsafe(size));
      const r = await withLoopDelay(async () => {
        if (mode === 'promise') for (const m of memfds) await read(m.fd, bufs[0], 0, size, 0);
        else await Promise.all(memfds.map((m, i) => read(m.fd, bufs[i], 0, size, 0)));
      });
      floor = { ns: r.end - r.start, eld: r.eld };
    }
    // The stalls of the machine itself: the same window with nothing on
    // the pool, the loop waiting on a timer for as long as the call took.
    // Any row's figure includes these.
    let idle;
    if (mode === 'promise') {
      const wait = Math.max(1, Math.round(Number(ns) / 1e6));
      idle = (await withLoopDelay(() => new Promise((resolve) => setTimeout(resolve, wait)))).eld;
    }
    for (const m of memfds) m.close();
    return { count, ns, eld, floor, idle };
  };
  // The first window is the process's first preserves, with the library's
  // code for them still cold: what a service's first live update meets.
  // It is reported apart (sweep-preserve-first); the figures per size are
  // of warm code.
  const first = await run(sizes[0], 'warm');
  if (mode !== 'sync') report(impl, 'sweep-preserve-first', first.count, first.ns, { size: sizes[0], eldMaxMs: first.eld, eldRunsMs: [first.eld], opened: 'open()' });
  // The Promise forms watch windowsFor(mode, size) windows per size (fresh
  // memfds each) and report the worst stall and the median window's time.
  for (const size of sizes) {
    const runs = [];
    for (let w = 0; w < windowsFor(mode, size); w++) runs.push(await run(size, `t${w}`));
    const { count } = runs[0];
    const ns = median(runs.map((x) => x.ns));
    const eld = { eldMaxMs: Math.max(...runs.map((x) => x.eld)), eldRunsMs: runs.map((x) => x.eld) };
    report(impl, 'sweep-preserve', count, ns, { size, ...(mode === 'sync' ? {} : eld) });
    if (runs[0].floor) {
      const floors = runs.map((x) => x.floor);
      const floorImpl = mode === 'concurrent' ? 'node-core-concurrent' : 'node-core';
      report(floorImpl, 'sweep-read-floor', count, median(floors.map((f) => f.ns)), { size, eldMaxMs: Math.max(...floors.map((f) => f.eld)), eldRunsMs: floors.map((f) => f.eld) });
    }
    if (runs[0].idle !== undefined) {
      const idle = runs.map((x) => x.idle);
      report('idle', 'sweep-idle-floor', count, median(runs.map((x) => x.ns)), { size, eldMaxMs: Math.max(...idle), eldRunsMs: idle });
    }
  }
  lu.close();
}

// Size sweep, stage 2: session windowSession(PREFIX, SIZE, W) holds
// filesFor(size) files of the pattern, for each of windowsFor(mode, size)
// windows. A window is timed from retrieving the session: every file
// retrieved and the session finished (sweep-retrieve; the loop delay is
// watched over this part), then each file read back and compared
// (sweep-restore is the whole, retrieve included). Finishing before
// reading is allowed: the files stay the process's own.
async function sweepRestore(mode, prefix, sizes) {
  const mapSync = typeof Memfd.prototype.mapSync === 'function';
  if (mode === 'mapsync' && !mapSync) {
    report('node-mapsync', 'sweep-restore', 0, 0, { skipped: 'this library has no Memfd.mapSync' });
    return;
  }
  const lu = await openDevice(mode);
  const impl = `node-${mode}`;
  // PREFIX-warm (4 KiB files) goes first (see bench/guest.cjs), reported
  // apart as the process's first window, as in sweepPreserve.
  const first = await restoreWindow(lu, mode, `${prefix}-warm`, 4096, pattern(4096));
  if (mode === 'promise' || mode === 'concurrent') report(impl, 'sweep-retrieve-first', filesFor(4096), first.retrieveNs, { size: 4096, eldMaxMs: first.eld, eldRunsMs: [first.eld], opened: 'open()' });
  for (const size of sizes) {
    const runs = [];
    const expected = pattern(size);
    for (let w = 0; w < windowsFor(mode, size); w++) runs.push(await restoreWindow(lu, mode, windowSession(prefix, size, w), size, expected));
    const count = filesFor(size);
    const eld = mode === 'promise' || mode === 'concurrent' ? { eldMaxMs: Math.max(...runs.map((x) => x.eld)), eldRunsMs: runs.map((x) => x.eld) } : {};
    report(impl, 'sweep-retrieve', count, median(runs.map((x) => x.retrieveNs)), { size, ...eld });
    report(impl, 'sweep-restore', count, median(runs.map((x) => x.restoreNs)), { size });
  }
  lu.close();
}

// `expected` is pattern(size), made once per size, not per window.
async function restoreWindow(lu, mode, name, size, expected) {
  const count = filesFor(size);
  const bufs = Array.from({ length: mode === 'concurrent' ? count : 1 }, () => Buffer.allocUnsafe(size));
  const check = (i, buf) => {
    if (!buf.equals(expected.subarray(i & 0xff, (i & 0xff) + size))) throw new Error(`${name}: file ${i} differs`);
  };
  let files;
  let s;
  const { eld, start, end } = await withLoopDelay(async () => {
    if (mode === 'sync' || mode === 'mapsync') {
      s = lu.retrieveSessionSync(name);
      files = Array.from({ length: count }, (_, i) => s.retrieveSync(i + 1));
      s.finishSync();
    } else if (mode === 'promise') {
      s = await lu.retrieveSession(name);
      files = [];
      for (let i = 0; i < count; i++) files.push(await s.retrieve(i + 1));
      await s.finish();
    } else {
      s = await lu.retrieveSession(name);
      files = await Promise.all(Array.from({ length: count }, (_, i) => s.retrieve(i + 1)));
      await s.finish();
    }
  });
  // The reads are timed apart: the loop-delay window's tail (and the
  // settle before it) are not part of the restore.
  const readStart = now();
  const readAll = async (f, buf) => {
    for (let off = 0; off < size; ) {
      const got = mode === 'sync' ? fs.readSync(f.fd, buf, off, size - off, off) : (await read(f.fd, buf, off, size - off, off)).bytesRead;
      if (got === 0) throw new Error('short read');
      off += got;
    }
  };
  if (mode === 'mapsync') {
    // The file as it is in memory, no copy. mapSync needs the shrink
    // seal (a file that shrinks under a mapping kills with SIGBUS).
    for (let i = 0; i < count; i++) {
      const m = Memfd.from(files[i]);
      files[i] = m;
      if (!m.getSealsSync().includes('shrink')) m.addSealsSync(['shrink']);
      const map = m.mapSync();
      check(i, Buffer.from(map.buffer, 0, size));
      map.unmap();
    }
  } else if (mode === 'concurrent') {
    await Promise.all(files.map((f, i) => readAll(f, bufs[i]).then(() => check(i, bufs[i]))));
  } else {
    for (let i = 0; i < count; i++) {
      await readAll(files[i], bufs[0]);
      check(i, bufs[0]);
    }
  }
  const done = now();
  for (const f of files) f.close();
  s.close();
  return { eld, retrieveNs: end - start, restoreNs: end - start + (done - readStart) };
}

async function main() {
  const n = rest.map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  if (what === 'stage1') await stage1(...n);
  else if (what === 'retrieve') await retrieve('retrieve-finish', n[0], n[1], n[2], 0, n[3], n[4]);
  else if (what === 'restore') await retrieve('restore-verify', n[0], n[1], n[2], n[3]);
  else if (what === 'sweep-preserve') await sweepPreserve(n[0], String(n[1]).split(',').map(Number));
  else if (what === 'sweep-restore') await sweepRestore(n[0], n[1], String(n[2]).split(',').map(Number));
  else throw new Error(`unknown step ${what}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
