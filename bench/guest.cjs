// The guest side of `npm run bench` (started by bench/run.mjs through
// runVm): stage 1 runs the in-kernel rows, pass after pass, alternating the
// C reference and each library's Node pass so that drift in the emulator's
// speed hits all of them alike; then it preserves the sessions stage 2
// retrieves and live-updates. Stage 2 retrieves them, C and Node in turn.
// Every measurement is appended to $LIVEUPDATE_VM_OUT/bench.jsonl.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const config = JSON.parse(fs.readFileSync(process.env.BENCH_CONFIG, 'utf8'));
const out = path.join(process.env.LIVEUPDATE_VM_OUT, 'bench.jsonl');
const stage = Number(process.env.LIVEUPDATE_VM_STAGE);
const passScript = path.join(__dirname, 'node-pass.cjs');

function record(obj) {
  fs.appendFileSync(out, `${JSON.stringify(obj)}\n`);
}

// Runs one measuring process and records its lines, tagged. The child gets
// the spawn time (BENCH_SPAWN_NS, CLOCK_MONOTONIC as process.hrtime) for
// the rows timed from process start.
function run(argv, tags) {
  const env = { ...process.env, BENCH_SPAWN_NS: String(process.hrtime.bigint()) };
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 20, env });
  if (r.status !== 0) {
    console.log(`bench: ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
    record({ ...tags, error: `${argv.slice(1).join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` });
    return;
  }
  for (const line of r.stdout.split('\n').filter(Boolean)) record({ ...tags, ...JSON.parse(line) });
}

const nodeWith = (flags, lib, ...args) => [process.execPath, ...flags, passScript, lib.dir, ...args.map(String)];
const node = (lib, ...args) => nodeWith([], lib, ...args);
// The sweep lets node-pass collect garbage before each loop-delay window
// (settled() in loop-delay.cjs): setup's GC debt otherwise lands inside the window.
const sweepNode = (lib, ...args) => nodeWith(['--expose-gc'], lib, ...args);
const keys = () => ['c', ...config.libs.flatMap((lib) => ['sync', 'promise'].map((mode) => `${lib.name}-${mode}`))];
const { sessions, files, getnames, floor } = config.counts;
const s2 = config.stage2;
const { filesFor, windowsFor, windowSession, pattern: sweepPattern, writePattern } = require('./sweep.cjs');
// The size sweep runs for this tree only (not a --baseline), in every form.
const sweep = config.sweep;
const sweepLib = config.libs[0];
const sweepModes = (mapSync) => ['sync', 'promise', 'concurrent', ...(mapSync ? ['mapsync'] : [])];

if (stage === 1) {
  record({
    guest: { kernel: os.release(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version },
  });
  for (let pass = 1; pass <= config.passes; pass++) {
    console.log(`bench: stage 1 pass ${pass}/${config.passes}`);
    // --single-threaded: see the report's notes (V8's background threads
    // have no CPU of their own on this guest; their turns made the Node
    // rows vary ×2–4 between passes).
    const order = [
      () => run([config.cBinary, 'stage1', sessions, files, getnames, floor], { stage: 1, pass, lib: 'c' }),
      () => run(['python3', path.join(__dirname, 'luo_bench.py'), sessions, files, getnames, floor], { stage: 1, pass, lib: 'python' }),
      ...config.libs.map((lib) => () => run(nodeWith(['--single-threaded'], lib, 'stage1', sessions, files, getnames, floor), { stage: 1, pass, lib: lib.name })),
    ];
    // Each pass starts one further along, so no implementation always
    // follows the same one (and inherits its kernel clean-up).
    for (let k = 0; k < order.length; k++) order[(k + pass - 1) % order.length]();
  }
  if (sweep) {
    console.log(`bench: size sweep, preserve (${sweep.sizes.length} sizes)`);
    const sizes = sweep.sizes.join(',');
    run([config.cBinary, 'sweep-preserve', sizes], { stage: 1, pass: 1, lib: 'c' });
    run([config.cUvBinary, 'sweep-preserve', sizes], { stage: 1, pass: 1, lib: 'c' });
    for (const mode of sweepModes(false)) run(sweepNode(sweepLib, 'sweep-preserve', mode, sizes), { stage: 1, pass: 1, lib: sweepLib.name });
  }
  if (!s2) process.exit(0);

  // What stage 2 retrieves: three sessions of empty memfds per key and rep
  // (bf-KEY-REP-warm and bf-KEY-REP-warm-2 are restored untimed first, in
  // the same process), one of patterned memfds per key. Made with the library under test; the
  // kernel does not care who made a session.
  console.log('bench: preserving the sessions for stage 2');
  const { LiveUpdate, Memfd } = require(path.join(config.libs[0].dir, 'dist/index.js'));
  const lu = LiveUpdate.openSync();
  const held = [];
  const pattern = sweepPattern(s2.restoreBytes);
  for (const key of keys()) {
    for (const rep of Array.from({ length: s2.reps }, (_, k) => [`${k + 1}`, `${k + 1}-warm`, `${k + 1}-warm-2`]).flat()) {
      const s = lu.createSessionSync(`bf-${key}-${rep}`);
      for (let i = 0; i < (rep.endsWith('-warm') ? s2.warmFiles : s2.files); i++) {
        // The session keeps its own reference: ours can go at once, which
        // keeps the process well under its fd limit.
        const m = Memfd.createSync('bench');
        s.preserveSync(m, i + 1);
        m.close();
      }
      held.push(s);
    }
    const s = lu.createSessionSync(`br-${key}`);
    for (let i = 0; i < s2.restoreFiles; i++) {
      const m = Memfd.createSync('bench');
      writePattern(m.fd, pattern, i, s2.restoreBytes);
      s.preserveSync(m, i + 1);
      m.close();
    }
    held.push(s);
  }
  if (sweep) {
    // One session per size, form and loop-delay window (windowsFor),
    // filesFor(size) files of the pattern. Made with allowSealing, so the
    // mapsync form can add the shrink seal Memfd.mapSync requires after
    // the kexec.
    const mapSync = typeof Memfd.prototype.mapSync === 'function';
    const data = sweepPattern(Math.max(...sweep.sizes));
    const preserveFiles = (name, bytes) => {
      const s = lu.createSessionSync(name);
      for (let i = 0; i < filesFor(bytes); i++) {
        const m = Memfd.createSync('bench', { allowSealing: true });
        writePattern(m.fd, data, i, bytes);
        s.preserveSync(m, i + 1);
        m.close();
      }
      held.push(s);
    };
    for (const key of ['c', 'c-uv', ...sweepModes(mapSync)]) {
      // Every form first retrieves a small session (sw-KEY-warm), so the
      // first size is not also V8's (or the process's) first call; that
      // window is reported apart (sweep-retrieve-first).
      preserveFiles(`sw-${key}-warm`, 4096);
      for (const size of sweep.sizes) {
        for (let w = 0; w < windowsFor(key, size); w++) preserveFiles(windowSession(`sw-${key}`, size, w), size);
      }
    }
  }
  record({ stage: 1, preserved: held.length });
  lu.close();
  // The live update itself is timed from the host, which stamps each
  // console line as it arrives (bench/run.mjs): this line, then the new
  // kernel's init announcing stage 2, then stage 2's first line with the
  // new kernel's uptime. Loading the kernel is done first, untimed.
  const { kexec } = require(path.join(config.libs[0].dir, 'dist/index.js'));
  const { nextStageCmdline } = require(path.join(config.libs[0].dir, 'dist/vm/qemu.js'));
  kexec.loadSync({ kernel: process.env.LIVEUPDATE_VM_KERNEL, cmdline: nextStageCmdline(stage + 1) });
  console.log('bench: reboot(KEXEC) now');
  kexec.rebootSync();
} else {
  // The first line of stage 2: the new kernel's uptime tells, of the host's
  // reboot-to-here, how much was this kernel booting (bench/run.mjs).
  console.log(`bench: stage 2 started, uptime ${fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]} s`);
  for (let rep = 1; rep <= s2.reps; rep++) {
    console.log(`bench: stage 2 retrieve rep ${rep}/${s2.reps}`);
    run([config.cBinary, 'retrieve', `bf-c-${rep}`, s2.files, `bf-c-${rep}-warm`, s2.warmFiles], { stage: 2, pass: rep, lib: 'c' });
    for (const lib of config.libs) {
      for (const mode of ['sync', 'promise']) {
        const name = `bf-${lib.name}-${mode}-${rep}`;
        // --single-threaded as in stage 1; the floor these rows are set
        // against (fstat) is timed in the same process, the same way.
        run(nodeWith(['--single-threaded'], lib, 'retrieve', mode, name, s2.files, `${name}-warm`, s2.warmFiles), { stage: 2, pass: rep, lib: lib.name });
      }
    }
  }
  console.log('bench: stage 2 restore');
  run([config.cBinary, 'restore', 'br-c', s2.restoreFiles, s2.restoreBytes], { stage: 2, pass: 1, lib: 'c' });
  for (const lib of config.libs) {
    for (const mode of ['sync', 'promise']) run(node(lib, 'restore', mode, `br-${lib.name}-${mode}`, s2.restoreFiles, s2.restoreBytes), { stage: 2, pass: 1, lib: lib.name });
  }
  if (sweep) {
    console.log('bench: size sweep, retrieve and restore');
    const mapSync = typeof require(path.join(sweepLib.dir, 'dist/index.js')).Memfd.prototype.mapSync === 'function';
    const sizes = sweep.sizes.join(',');
    run([config.cBinary, 'sweep-restore', 'sw-c', sizes], { stage: 2, pass: 1, lib: 'c' });
    run([config.cUvBinary, 'sweep-restore', 'sw-c-uv', sizes], { stage: 2, pass: 1, lib: 'c' });
    for (const mode of sweepModes(mapSync)) run(sweepNode(sweepLib, 'sweep-restore', mode, `sw-${mode}`, sizes), { stage: 2, pass: 1, lib: sweepLib.name });
    if (!mapSync) run(sweepNode(sweepLib, 'sweep-restore', 'mapsync', 'sw-mapsync', sizes), { stage: 2, pass: 1, lib: sweepLib.name });
  }
  record({ stage: 2, done: true });
}
