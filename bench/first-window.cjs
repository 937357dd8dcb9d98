// What a process's first Promise calls cost the event loop, taken apart
// (issue 8; README, Performance, "What is left"). Run in the LUO guest:
//
//   npx liveupdate vm run bench/first-window.cjs [PROCESSES]
//
// Each variant runs in PROCESSES fresh processes (default 4), each of which
// sets up, then watches 3 windows of 16 preserves of 4 KiB memfds, one at
// a time and, in other processes, all at once, in the bench's window
// (bench/loop-delay.cjs: a full GC, a 200 ms pause, then the loop's longest
// stall while the calls run). The variants:
//
//   openSync   the device opened and the sessions made with the sync API:
//              libuv's pool starts in the first window
//   open       with LiveUpdate.open() and createSession(): the pool has
//              started, the library's preserve path has not run (the bench)
//   warm       as open, plus one preserve of another memfd into a session
//              closed again, before the first window: what a service can
//              do at start-up
//   no-lazy    as open, Node run with --no-lazy: V8 compiles every function
//              when its file loads, not on its first call
//   addon      as open, but the addon's Promise ioctl called directly: no
//              library code on the path
//   core       as open, but Node core's Promise fs.fstat of each memfd
//
// Prints one line per process, then each variant's range and median.
//
//   node bench/first-window.cjs --host [PROCESSES]
//
// runs the same on this machine, without a LUO device: a stand-in binding
// answers the device's ioctls, each with a real round trip through the
// addon and libuv's pool (F_GET_SEALS on a memfd), so what it shows is
// Node's and the library's side of a first window on real hardware, with
// no kernel work to speak of.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { withLoopDelay } = require('./loop-delay.cjs');
const { WINDOWS, filesFor } = require('./sweep.cjs');

const VARIANTS = ['openSync', 'open', 'warm', 'no-lazy', 'addon', 'core'];
const FORMS = ['one at a time', 'all at once'];
// The sweep's first window: its smallest size, as many files as it takes.
const SIZE = 4096;
const COUNT = filesFor(SIZE);

if (process.argv[2] === '--child') child(process.argv[3], process.argv[4], process.argv[5] === 'host').catch((err) => {
  console.error(err);
  process.exit(1);
});
else if (process.argv[2] === '--host') parent(Number(process.argv[3] ?? 4), true);
else parent(Number(process.argv[2] ?? 4), false);

function parent(processes, host) {
  if (!Number.isInteger(processes) || processes < 1) throw new RangeError(`PROCESSES must be a positive integer, not ${processes}`);
  const results = new Map();
  // Variants interleaved, so a slow stretch of the emulator falls on all.
  for (let p = 0; p < processes; p++) {
    for (const form of FORMS) {
      for (const variant of VARIANTS) {
        const flags = ['--expose-gc', ...(variant === 'no-lazy' ? ['--no-lazy'] : [])];
        const r = spawnSync(process.execPath, [...flags, __filename, '--child', variant, form, host ? 'host' : 'device'], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${variant}, ${form}: exit ${r.status}\n${r.stderr}`);
        const windows = JSON.parse(r.stdout);
        console.log(`${variant.padEnd(8)} ${form.padEnd(13)} ${windows.map((x) => x.toFixed(1)).join('  ')}`);
        const key = `${variant}\t${form}`;
        if (!results.has(key)) results.set(key, { first: [], later: [] });
        results.get(key).first.push(windows[0]);
        results.get(key).later.push(...windows.slice(1));
      }
    }
  }
  // ASCII only: the guest's serial console can split a multibyte character.
  const cell = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)} (${median(xs).toFixed(1)})`;
  console.log(`\nlongest stall in ms, range (median), ${processes} processes each${host ? ', on this machine with a stand-in device' : ''}:`);
  console.log('| variant | form | first window | later windows |\n|---|---|---|---|');
  for (const variant of VARIANTS) {
    for (const form of FORMS) {
      const r = results.get(`${variant}\t${form}`);
      console.log(`| ${variant} | ${form} | ${cell(r.first)} | ${cell(r.later)} |`);
    }
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function child(variant, form, host) {
  const { LiveUpdate, Memfd } = require(path.resolve(__dirname, '../dist/index.js'));
  const real = require(path.resolve(__dirname, '../dist/binding.js')).defaultBinding();
  const binding = host ? standIn(real, Memfd) : real;
  const device = host ? '/dev/null' : undefined;
  const fstat = promisify(fs.fstat);
  const sync = variant === 'openSync';
  const lu = sync ? LiveUpdate.openSync(device, { binding }) : await LiveUpdate.open(device, { binding });
  const index = binding.ioctlLayout.LIVEUPDATE_SESSION_PRESERVE_FD.index;
  const out = [];
  for (let w = 0; w < WINDOWS; w++) {
    const memfds = [];
    for (let i = 0; i < COUNT; i++) {
      const m = sync ? Memfd.createSync('first', { binding }) : await Memfd.create('first', { binding });
      fs.writeSync(m.fd, Buffer.alloc(SIZE, i), 0, SIZE, 0);
      memfds.push(m);
    }
    const name = `first-window-${process.pid}-${w}`;
    if (w === 0 && variant === 'warm') {
      // As the README suggests a service do at start-up: a session of its
      // own, closed again (which drops what it preserved).
      const warm = await lu.createSession(`${name}-warm`);
      const m = await Memfd.create('warm', { binding });
      await warm.preserve(m, 1);
      warm.close();
      m.close();
    }
    const s = sync ? lu.createSessionSync(name) : await lu.createSession(name);
    const call =
      variant === 'addon' ? (i) => binding.ioctl(s.fd, index, memfds[i].fd, BigInt(i + 1))
      : variant === 'core' ? (i) => fstat(memfds[i].fd)
      : (i) => s.preserve(memfds[i], i + 1);
    const { eld } = await withLoopDelay(async () => {
      if (form === 'one at a time') for (let i = 0; i < COUNT; i++) await call(i);
      else await Promise.all(memfds.map((_, i) => call(i)));
    });
    out.push(eld);
    s.close();
    for (const m of memfds) m.close();
  }
  lu.close();
  process.stdout.write(JSON.stringify(out));
}

// The device's ioctls answered without a device: the probe fails as the
// device's does (EINVAL), a session is a dup of the device's fd, a preserve
// does nothing; each Promise call is a real F_GET_SEALS on the pool.
function standIn(real, Memfd) {
  const layout = real.ioctlLayout;
  const create = layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index;
  const preserve = layout.LIVEUPDATE_SESSION_PRESERVE_FD.index;
  const anchor = Memfd.createSync('stand-in').detach();
  const einval = () => Object.assign(new Error('EINVAL (stand-in device)'), { code: 'EINVAL', errno: -22, syscall: 'ioctl' });
  return {
    ...real,
    ioctlSync(fd, index) {
      if (index === create) return real.unix.dup(fd);
      throw einval();
    },
    ioctl(fd, index, ...inputs) {
      if (index === create) return real.getSeals(anchor).then(() => real.unix.dup(fd));
      if (index === preserve) return real.getSeals(inputs[0]).then(() => undefined);
      return real.getSeals(anchor).then(() => {
        throw einval();
      });
    },
  };
}
