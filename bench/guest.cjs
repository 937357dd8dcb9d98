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

// Runs one measuring process and records its lines, tagged.
function run(argv, tags) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) {
    console.log(`bench: ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
    record({ ...tags, error: `${argv.slice(1).join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}` });
    return;
  }
  for (const line of r.stdout.split('\n').filter(Boolean)) record({ ...tags, ...JSON.parse(line) });
}

const node = (lib, ...args) => [process.execPath, passScript, lib.dir, ...args.map(String)];
// A --baseline from before Memfd.mapSync has no restore-map row.
const canMap = (lib) => fs.existsSync(path.join(lib.dir, 'dist/memfd-mapping.js'));
const keys = () => ['c', ...config.libs.flatMap((lib) => ['sync', 'promise'].map((mode) => `${lib.name}-${mode}`))];
const { sessions, files, getnames, floor } = config.counts;
const s2 = config.stage2;

if (stage === 1) {
  record({
    guest: { kernel: os.release(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version },
  });
  for (let pass = 1; pass <= config.passes; pass++) {
    console.log(`bench: stage 1 pass ${pass}/${config.passes}`);
    run([config.cBinary, 'stage1', sessions, files, getnames, floor], { stage: 1, pass, lib: 'c' });
    run(['python3', path.join(__dirname, 'luo_bench.py'), sessions, files, getnames, floor], { stage: 1, pass, lib: 'python' });
    for (const lib of config.libs) run(node(lib, 'stage1', sessions, files, getnames, floor), { stage: 1, pass, lib: lib.name });
  }
  if (!s2) process.exit(0);

  // What stage 2 retrieves: one session of empty memfds per key and rep,
  // one of patterned memfds per key. Made with the library under test;
  // the kernel does not care who made a session.
  console.log('bench: preserving the sessions for stage 2');
  const { LiveUpdate, Memfd } = require(path.join(config.libs[0].dir, 'dist/index.js'));
  const { liveUpdateToNextStage } = require(path.join(config.libs[0].dir, 'dist/vm/index.js'));
  const lu = LiveUpdate.openSync();
  const held = [];
  const pattern = Buffer.alloc(s2.restoreBytes + 256);
  for (let k = 0; k < pattern.length; k++) pattern[k] = k & 0xff;
  for (const key of keys()) {
    for (let rep = 1; rep <= s2.reps; rep++) {
      const s = lu.createSessionSync(`bf-${key}-${rep}`);
      for (let i = 0; i < s2.files; i++) {
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
      fs.writeSync(m.fd, pattern, i & 0xff, s2.restoreBytes, 0);
      s.preserveSync(m, i + 1);
      m.close();
    }
    held.push(s);
  }
  // The same restore, shrink-sealed so that stage 2 can map it (restore-map row).
  for (const lib of config.libs.filter(canMap)) {
    const s = lu.createSessionSync(`bm-${lib.name}`);
    for (let i = 0; i < s2.restoreFiles; i++) {
      const m = Memfd.createSync('bench', { size: s2.restoreBytes });
      fs.writeSync(m.fd, pattern, i & 0xff, s2.restoreBytes, 0);
      m.addSealsSync(['shrink']);
      s.preserveSync(m, i + 1);
      m.close();
    }
    held.push(s);
  }
  record({ stage: 1, preserved: held.length });
  lu.close();
  liveUpdateToNextStage();
} else {
  for (let rep = 1; rep <= s2.reps; rep++) {
    console.log(`bench: stage 2 retrieve rep ${rep}/${s2.reps}`);
    run([config.cBinary, 'retrieve', `bf-c-${rep}`, s2.files], { stage: 2, pass: rep, lib: 'c' });
    for (const lib of config.libs) {
      for (const mode of ['sync', 'promise']) run(node(lib, 'retrieve', mode, `bf-${lib.name}-${mode}-${rep}`, s2.files), { stage: 2, pass: rep, lib: lib.name });
    }
  }
  console.log('bench: stage 2 restore');
  run([config.cBinary, 'restore', 'br-c', s2.restoreFiles, s2.restoreBytes], { stage: 2, pass: 1, lib: 'c' });
  for (const lib of config.libs) {
    for (const mode of ['sync', 'promise']) run(node(lib, 'restore', mode, `br-${lib.name}-${mode}`, s2.restoreFiles, s2.restoreBytes), { stage: 2, pass: 1, lib: lib.name });
  }
  for (const lib of config.libs.filter(canMap)) {
    run(node(lib, 'restore-map', `bm-${lib.name}`, s2.restoreFiles, s2.restoreBytes), { stage: 2, pass: 1, lib: lib.name });
  }
  record({ stage: 2, done: true });
}
