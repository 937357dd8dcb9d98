#!/usr/bin/env node
// `npm run bench`: the library against a C reference on the project's LUO
// kernel, in one boot of the QEMU guest (see README, Performance).
//
//   npm run bench -- [--passes N] [--quick] [--baseline GIT-REF] [--no-kexec] [--sizes 4K,1M,…] [--cpus N] [--no-readme] [--out DIR]
//   npm run bench -- --help
//   npm run bench -- --from bench/results/bench.json [--no-readme] [--out DIR]
//
// The C reference (bench/luo-bench.c) is compiled here with gcc -O2 -static -pthread;
// the guest runs the host's root over 9p, so it and this checkout run there
// as they are. With --baseline, the library as of GIT-REF is built in a
// temporary directory and measured in the same boot, pass for pass beside
// the working tree: a before/after from one run.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { parseSizes, sizeLabel, filesFor, sweepBytes } = require('./sweep.cjs');
const { sweepSvg } = require('./chart.cjs');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { cacheRoot, ensureHostPackages, HOST_PACKAGES, ensureKernel, runVm, stderrReporter, duration } = require(path.join(root, 'dist/vm/index.js'));
const { kvmUsable, defaultCpus } = require(path.join(root, 'dist/vm/qemu.js'));

const { values } = parseArgs({
  options: {
    passes: { type: 'string', default: '5' },
    quick: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'no-kexec': { type: 'boolean', default: false },
    // Where the report goes: bench/results, or with --from a bench.json,
    // beside it (a re-render stays with its run).
    out: { type: 'string' },
    // The size sweep's memfd sizes; "none" skips the sweep.
    sizes: { type: 'string' },
    // Leave README.md's table (between the bench:start/end markers) alone.
    'no-readme': { type: 'boolean', default: false },
    // The guest's vCPUs (the project's VM default otherwise: one under TCG).
    cpus: { type: 'string' },
    // Re-render the report of a previous run (its bench.json, or the raw
    // bench.jsonl beside a bench.json in --out) with that run's settings: no VM.
    from: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`npm run bench -- [options]: the library against a C reference and Python, in one boot of the
project's LUO guest (the kernel is built and cached by \`npm test\` or on first use).

  --passes N          stage-1 passes, each timing every implementation (default 5; the README's run: 7)
  --baseline GIT-REF  also measure the library as of GIT-REF, pass for pass: a before/after from one run
  --sizes LIST        the size sweep's memfd sizes (default 4K,64K,1M,16M,64M,256M,1G; "none" skips it);
                      the guest's memory follows them (16 GiB at the default)
  --cpus N            the guest's vCPUs (default: one under TCG, two with KVM)
  --no-kexec          stage 1 only: no live update, no retrieve rows, no sweep
  --quick             small counts and sizes 4K,1M,16M, to check the bench itself
  --out DIR           where bench.json, bench.md and sweep.svg go (default bench/results; with --from,
                      beside the file read)
  --no-readme         leave README.md's table alone (it is rewritten when --out is bench/results)
  --from FILE         re-render a previous run's bench.json (or bench.jsonl) with its own settings, no VM
  -h, --help          this text

The README's figures: npm run bench -- --passes 7 --baseline 6196b66
`);
  process.exit(0);
}
// Native calls per operation, for the excess-over-floor column: create+close
// is two (ioctl, close), retrieve+close per file two, the rest one. Restore
// has none: copying and comparing a MiB is not a per-call cost.
const CALLS = { 'create-close': 2, 'create-close-raw': 2, 'get-name-raw': 1, 'preserve-raw': 1, preserve: 1, 'get-name': 1, 'retrieve-finish': 2, fstat: 1, 'open-close': 2 };
const LABEL = {
  'create-close': 'create + close a session',
  preserve: 'preserve an empty memfd',
  'get-name': 'get_name',
  'create-close-raw': 'create + close, the addon alone (no library)',
  'get-name-raw': 'get_name, the addon alone (no library)',
  'preserve-raw': 'preserve, the addon alone (no library)',
  fstat: 'Node core floor: fstat',
  'open-close': 'Node core floor: open + close /dev/null',
  'retrieve-finish': 'after kexec: retrieve a file (+ finish)',
  'restore-verify': 'after kexec: restore 1 MiB, verified',
};

// The size sweep's forms and operations, in table and chart order.
const SWEEP_FORMS = [
  ['c', 'C'],
  ['node-sync', 'Node sync'],
  ['node-promise', 'Node Promise'],
  ['node-concurrent', 'Node Promise, concurrent'],
  ['node-mapsync', 'Node mapSync'],
];
const SWEEP_OPS = [
  ['sweep-preserve', 'preserve'],
  ['sweep-retrieve', 'retrieve (+ finish)'],
  ['sweep-restore', 'restore: retrieve, read back, verify, finish'],
];

const report = stderrReporter('[bench]');
const out = values.out ?? (values.from && !values.from.endsWith('.jsonl') ? path.dirname(values.from) : path.join(root, 'bench/results'));

// With --from, every setting is the run's own (a report rendered with
// other flags would mislabel its figures): from its bench.json.
const previous = values.from ? readPrevious(values.from) : undefined;
if (previous) {
  const given = ['passes', 'quick', 'baseline', 'no-kexec', 'sizes', 'cpus'].filter((k) => process.argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`)));
  if (given.length) throw new Error(`--from re-renders a run with its own settings; drop ${given.map((k) => `--${k}`).join(', ')}`);
}
// The sweep's files are retrieved after the kexec: without one there is
// no sweep, and sizes given anyway would be dropped without a word.
if (values['no-kexec'] && values.sizes !== undefined && values.sizes !== 'none') throw new Error('--sizes: the size sweep runs across the kexec; drop --no-kexec, or --sizes');
const cpus = values.cpus === undefined ? defaultCpus(kvmUsable()) : Number(values.cpus);
if (!Number.isInteger(cpus) || cpus < 1) throw new Error('--cpus takes a positive integer');
const passes = previous ? previous.result.passes : Number(values.passes);
if (!Number.isInteger(passes) || passes < 1) throw new Error('--passes takes a positive integer');
// The issue's sizes; --quick is for debugging the bench itself.
const counts = previous ? previous.result.counts : values.quick
  ? { sessions: 200, files: 50, getnames: 1000, floor: 1000 }
  : { sessions: 2000, files: 500, getnames: 10000, floor: 10000 };
const stage2 = previous ? previous.result.stage2 : values['no-kexec'] ? null : values.quick
  ? { reps: 1, files: 50, warmFiles: 200, restoreFiles: 10, restoreBytes: 1 << 20 }
  : { reps: 3, files: 500, warmFiles: 2000, restoreFiles: 100, restoreBytes: 1 << 20 };

// 4 KiB to 1 GiB, the issue's range: every form's files of every size stay
// preserved together across the kexec (bench/sweep.cjs), so the guest's
// memory follows the sizes.
const sizeSpec = values.sizes ?? (values.quick ? '4K,1M,16M' : '4K,64K,1M,16M,64M,256M,1G');
const sweep = previous ? previous.result.sweep && { sizes: previous.result.sweep.sizes } : values['no-kexec'] || sizeSpec === 'none' ? null : { sizes: parseSizes(sizeSpec) };
const memoryGiB = previous ? undefined : guestMemoryGiB();

// What the guest holds through the kexec (the restore sessions of each
// library and form plus C's, and the sweep's), then room beside it for
// the new kernel and for stage 2's largest restore (the file's expected
// contents and a buffer to read it into). A host that cannot give that
// much is told so before anything is built.
function guestMemoryGiB() {
  const libs = values.baseline ? 2 : 1;
  const restore = stage2 ? stage2.restoreFiles * stage2.restoreBytes * (1 + 2 * libs) : 0;
  const sweepForms = ['c', 'c-uv', 'sync', 'promise', 'concurrent', 'mapsync'];
  const swept = sweep ? sweepBytes(sweep.sizes, sweepForms) + 2 * Math.max(...sweep.sizes) : 0;
  const need = Math.max(4, Math.ceil((restore + swept) / 2 ** 30 + 2.5));
  const have = Math.floor(os.totalmem() / 2 ** 30);
  if (need + 2 > have) {
    throw new Error(`bench: the guest needs ${need} GiB for sizes ${sizeSpec} and this machine has ${have} GiB; pass smaller --sizes (e.g. --sizes 4K,64K,1M,16M,64M,256M)`);
  }
  return need;
}

const run = previous ? undefined : await measure();
const lines = previous ? previous.lines : readLines(path.join(run.outDir, 'bench.jsonl'));
const errors = lines.filter((l) => l.error);
for (const e of errors) report(`error: ${e.error}\n`);
const guest = lines.find((l) => l.guest)?.guest;
const rows = summarize(lines.filter((l) => l.op && l.size === undefined && !l.skipped));
const sweepRows = summarizeSweep(lines.filter((l) => l.op && l.size !== undefined));
const skipped = lines.filter((l) => l.skipped).map((l) => `${l.impl}: ${l.skipped}`);
const argv = process.argv.slice(2);
const command = ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' ');
const result = previous
  ? { ...previous.result, guest, errors: errors.map((e) => e.error), skipped, sweep: sweep && { sizes: sweep.sizes, files: previous.result.sweep.files, rows: sweepRows }, rows, samples: lines.filter((l) => l.op) }
  : {
      date: new Date().toISOString(),
      command,
      commit: git(['rev-parse', '--short', 'HEAD']) + (git(['status', '--porcelain', '--', 'lib', 'native', 'types', 'bench', ':!bench/results']) ? '+dirty' : ''),
      baseline: values.baseline ? { ref: values.baseline, commit: git(['rev-parse', '--short', values.baseline]) } : undefined,
      host: run.host,
      guest,
      kernel: run.kernel,
      passes,
      counts,
      stage2,
      vmWallMs: run.wallMs,
      errors: errors.map((e) => e.error),
      skipped,
      liveUpdate: liveUpdateTimes(run.marks),
      sweep: sweep && { sizes: sweep.sizes, files: sweep.sizes.map(filesFor), rows: sweepRows },
      rows,
      samples: lines.filter((l) => l.op),
    };
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
const md = markdown(result);
fs.writeFileSync(path.join(out, 'bench.md'), md);
if (result.sweep?.rows.length) fs.writeFileSync(path.join(out, 'sweep.svg'), sweepSvg(result));
process.stdout.write(`\n${md}\n`);
report(`wrote ${path.relative(process.cwd(), path.join(out, 'bench.json'))}, bench.md${result.sweep?.rows.length ? ' and sweep.svg' : ''}; reproduce with: ${result.command}\n`);
if (!values['no-readme'] && path.resolve(out) === path.join(root, 'bench/results')) updateReadme(md);
if (!previous) report(`raw samples: ${path.join(run.outDir, 'bench.jsonl')}\n`);
process.exitCode = errors.length || !guest ? 1 : 0;

// --- the run ---------------------------------------------------------------

// Compiles the C reference, builds the baseline, boots the guest and runs
// bench/guest.cjs; the samples land in bench.jsonl in the returned outDir.
async function measure() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-bench-'));
  // libuv1-dev: the headers and static library of bench/luo-bench-uv.c.
  ensureHostPackages(report, [...HOST_PACKAGES, { pkg: 'libuv1-dev', present: () => fs.existsSync('/usr/include/uv.h') }]);
  const cBinary = path.join(work, 'luo-bench');
  execFileSync('gcc', ['-O2', '-static', '-pthread', '-Wall', '-o', cBinary, path.join(root, 'bench/luo-bench.c')], { stdio: 'inherit' });
  const cUvBinary = path.join(work, 'luo-bench-uv');
  // Linked statically like luo-bench (the guest runs it as is); ld's note
  // that libuv's getpwuid_r wants glibc's shared libraries at run time does
  // not concern it (never called), so the output is shown only on failure.
  // Debian's libuv1-dev names its static library libuv_a.a up to 1.44
  // (bookworm) and libuv.a after; gcc says where either is, or echoes the
  // bare name back.
  const uvStatic = ['libuv_a.a', 'libuv.a'].map((f) => execFileSync('gcc', [`-print-file-name=${f}`], { encoding: 'utf8' }).trim()).find((f) => path.isAbsolute(f));
  if (!uvStatic) throw new Error('bench: no static libuv (libuv_a.a or libuv.a) for bench/luo-bench-uv.c; install Debian\'s libuv1-dev');
  try {
    execFileSync('gcc', ['-O2', '-static', '-pthread', '-Wall', '-o', cUvBinary, path.join(root, 'bench/luo-bench-uv.c'), uvStatic], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    throw err;
  }

  const libs = [{ name: 'node', dir: root }];
  if (values.baseline) libs.push({ name: 'base', dir: buildBaseline(values.baseline) });

  const kernel = await ensureKernel({ report });
  const configFile = path.join(work, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ cBinary, cUvBinary, libs, passes, counts, stage2, sweep }));
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-bench-out-'));
  const consoleLog = path.join(work, 'console.log');
  const log = fs.createWriteStream(consoleLog);
  const host = hostInfo();
  const marks = {};
  report(`booting ${kernel.version} (${host.accel}); console: ${consoleLog}\n`);
  const vm = await runVm({
    kernel: kernel.bzImage,
    argv: [process.execPath, path.join(root, 'bench/guest.cjs')],
    cwd: root,
    env: { BENCH_CONFIG: configFile },
    outDir,
    workDir: path.join(cacheRoot(), 'vm'),
    cpus,
    memory: `${memoryGiB}G`,
    timeoutMs: 40 * 60_000,
    onConsole: (line) => {
      // Host-side stamps for the live update itself (see liveUpdateTimes).
      if (/^bench: reboot\(KEXEC\) now/.test(line)) marks.reboot = performance.now();
      else if (/^liveupdate-vm: stage 2 /.test(line)) marks.init = performance.now();
      else if (/^bench: stage 2 started/.test(line)) {
        marks.bench = performance.now();
        marks.uptime = Number(/uptime ([\d.]+)/.exec(line)?.[1]);
      }
      log.write(`${line}\n`);
      if (/^(bench:|liveupdate-vm:)|Kernel panic|Oops/.test(line)) report(`${line}\n`);
    },
  });
  await new Promise((resolve) => log.end(resolve));
  report(`VM finished in ${duration(vm.wallMs)} (exit ${vm.exitCode}${vm.timedOut ? ', timed out' : ''})\n`);
  return { ...vm, outDir, host, marks, kernel: kernel.version };
}

// A run's raw samples, one JSON object per line; none if it wrote none.
function readLines(file) {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

// A previous run to re-render: its bench.json (which keeps every sample),
// or a raw bench.jsonl, whose run's settings are in the bench.json in --out
// (checked to be that run's: the same samples).
function readPrevious(file) {
  if (!fs.existsSync(file)) throw new Error(`--from ${file}: no such file`);
  if (file.endsWith('.jsonl')) {
    const json = path.join(out, 'bench.json');
    if (!fs.existsSync(json)) throw new Error(`--from ${file}: the run's settings are in its bench.json, not found in ${out} (give --out, or --from that bench.json)`);
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    const lines = readLines(file);
    const samples = lines.filter((l) => l.op);
    if (JSON.stringify(samples) !== JSON.stringify(result.samples)) throw new Error(`--from ${file}: its samples are not those of ${json}, so that run's settings would mislabel them (give --out the directory holding this run's bench.json)`);
    return { result, lines };
  }
  const result = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(result.samples)) throw new Error(`--from ${file}: not a bench.json (no samples)`);
  // The guest and error records are not samples; they come back from the report's own fields.
  const lines = [{ guest: result.guest }, ...(result.errors ?? []).map((error) => ({ error })), ...result.samples];
  return { result, lines };
}

// --- helpers ---------------------------------------------------------------

function git(args) {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
}

// The library as of `ref`, in a directory of its own: its TypeScript built
// with this checkout's compiler, and its addon copied from this build when
// native/ is the same (else rebuilt), so only the library code differs.
function buildBaseline(ref) {
  const sha = git(['rev-parse', '--short', ref]);
  const dir = path.join(os.tmpdir(), `liveupdate-bench-base-${sha}`);
  // Both halves: a run cut short between them must not leave a library without its addon.
  if (!fs.existsSync(path.join(dir, 'dist/index.js')) || !fs.existsSync(path.join(dir, 'build/Release/liveupdate.node'))) {
    report(`building the baseline ${ref} (${sha}) in ${dir}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C '${dir}'`], { cwd: root, stdio: 'inherit' });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
    const sameNative = spawnSync('git', ['diff', '--quiet', sha, '--', 'native', 'binding.gyp'], { cwd: root }).status === 0;
    if (sameNative) fs.cpSync(path.join(root, 'build'), path.join(dir, 'build'), { recursive: true });
    // npm puts its own node-gyp on the script's PATH; node_modules has none.
    else execFileSync('npm', ['run', '--silent', 'build:native'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}

function hostInfo() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const kvm = kvmUsable();
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    accel: `${kvm ? 'KVM' : 'TCG software emulation'}, ${cpus} vCPU${cpus === 1 ? '' : 's'}`,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

// Per-op microseconds: median, min and max over the passes, per (stage, op, library, form).
function summarize(samples) {
  const groups = new Map();
  for (const x of samples) {
    const key = `${x.stage}|${x.op}|${x.lib}|${x.impl}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(x.ns / x.n / 1000);
  }
  return [...groups].map(([key, us]) => {
    const [stage, op, lib, impl] = key.split('|');
    return { stage: Number(stage), op, lib, impl, us: stats(us) };
  });
}

// The live update itself, from the host's stamps on console lines (QEMU's
// serial port, read as it comes): the guest printing that it calls
// reboot(KEXEC), the new kernel's init announcing stage 2, and stage 2's
// first line. The new kernel's uptime at that line splits the second span
// into the handover (old kernel shutting down, KHO, the jump: everything
// before the new kernel's clock starts) and the new kernel's own boot.
function liveUpdateTimes(m) {
  if (m.reboot === undefined || m.init === undefined) return undefined;
  const out = { rebootToInitMs: Math.round(m.init - m.reboot) };
  if (m.bench !== undefined) {
    out.rebootToStage2Ms = Math.round(m.bench - m.reboot);
    if (Number.isFinite(m.uptime)) {
      out.newKernelUptimeMs = Math.round(m.uptime * 1000);
      out.handoverMs = Math.max(0, out.rebootToStage2Ms - out.newKernelUptimeMs);
    }
  }
  return out;
}

// The median over stage-1 passes of (Node − C) per native call ÷ (Node
// fstat − C fstat), each term from the same pass: pairing cancels the
// emulator's drift between passes, which medians taken apart do not.
function pairedExcess(samples, op, cOp, lib, stage = 1) {
  if (!CALLS[op]) return undefined;
  const us = (l, impl, o, pass) => {
    const x = samples.find((y) => y.stage === stage && y.pass === pass && y.lib === l && y.impl === impl && y.op === o);
    return x && x.ns / x.n / 1000;
  };
  const passes = [...new Set(samples.filter((y) => y.stage === stage && y.op === op && y.lib === lib).map((y) => y.pass))];
  const ratios = passes.flatMap((pass) => {
    const [n, c, nf, cf] = [us(lib, 'node-sync', op, pass), us('c', 'c', cOp, pass), us(lib, 'node-sync', 'fstat', pass), us('c', 'c', 'fstat', pass)];
    return [n, c, nf, cf].every((v) => v !== undefined) && nf > cf ? [(n - c) / CALLS[op] / (nf - cf)] : [];
  });
  return ratios.length ? stats(ratios).median : undefined;
}

// One sample per (op, form, size): the sweep runs one pass.
function summarizeSweep(samples) {
  return samples.map((x) => ({
    op: x.op, lib: x.lib, impl: x.impl, size: x.size, files: x.n,
    usPerFile: x.ns / x.n / 1000,
    ...(x.eldMaxMs !== undefined ? { eldMaxMs: x.eldMaxMs, windows: x.eldRunsMs?.length ?? 1 } : {}),
    ...(x.opened !== undefined ? { opened: x.opened } : {}),
  }));
}

function sweepMarkdown(r) {
  const rows = r.sweep?.rows ?? [];
  if (!rows.length) return [];
  const at = (op, impl, size) => rows.find((x) => x.op === op && x.impl === impl && x.size === size);
  const out = ['', `**Size sweep** (one pass; ms per file, ×C beside; files per size: ${r.sweep.sizes.map((z, i) => `${sizeLabel(z)} ×${r.sweep.files[i]}`).join(', ')}):`, ''];
  for (const [op, title] of SWEEP_OPS) {
    const forms = SWEEP_FORMS.filter(([impl]) => impl !== 'node-mapsync' || op === 'sweep-restore');
    out.push(`| ${title} | ${forms.map(([, l]) => l).join(' | ')} |`, `|---|${forms.map(() => '---').join('|')}|`);
    for (const size of r.sweep.sizes) {
      const c = at(op, 'c', size);
      const cells = forms.map(([impl]) => {
        const x = at(op, impl, size);
        if (!x) return impl === 'node-mapsync' ? 'skipped' : '–';
        const ms = msCell(x.usPerFile / 1000);
        return impl === 'c' || !c ? ms : `${ms} (${(x.usPerFile / c.usPerFile).toFixed(1)}×)`;
      });
      out.push(`| ${sizeLabel(size)} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  out.push('![Size sweep: ms per file against memfd size, C and Node](sweep.svg)');
  return out;
}

// Promise forms and the event loop: the longest stall
// (perf_hooks.monitorEventLoopDelay, 1 ms timer) while preserve, and
// retrieve + finish, run, at the largest size and over all sizes.
// How many windows each Node cell is the worst of (older runs watched
// retrieve in one window; from 1 GiB up there is one, bench/sweep.cjs).
function windowsSentence(rows) {
  const node = rows.filter((x) => x.impl.startsWith('node-'));
  const count = (op) => Math.max(...node.filter((x) => x.op === op).map((x) => x.windows));
  const words = (n) => (n === 1 ? 'one window' : `${n} windows`);
  const [p, q] = [count('sweep-preserve'), count('sweep-retrieve')];
  const single = [...new Set(node.filter((x) => x.windows === 1 && count(x.op) > 1).map((x) => x.size))].sort((a, b) => a - b);
  const except = single.length ? ` (one at ${single.map(sizeLabel).join(' and ')})` : '';
  return p === q ? ` Each cell is the worst of ${words(p)}${except}.` : ` Each cell is the worst of ${words(p)} (preserve) or ${words(q)} (retrieve)${except}.`;
}

function loopDelayMarkdown(r) {
  const watched = (r.sweep?.rows ?? []).filter((x) => x.eldMaxMs !== undefined);
  // A process's first window (4 KiB files, before any per-size one) is a
  // column of its own: cold code and libuv's pool starting, not the size.
  const rows = watched.filter((x) => !x.op.endsWith('-first'));
  const firsts = watched.filter((x) => x.op.endsWith('-first'));
  if (!rows.length) return [];
  const largest = Math.max(...r.sweep.sizes);
  const firstSize = firsts[0]?.size;
  const firstHead = firsts.length ? ` a process's first window: preserve, retrieve + finish (${sizeLabel(firstSize)} ×${firsts[0].files}) |` : '';
  const firstDash = firsts.length ? ' – |' : '';
  const out = ['', `**Event-loop delay of the Promise forms** (longest stall in ms, \`monitorEventLoopDelay\` at 1 ms resolution, so about 1 is a loop that never stalled; issue 8's goal: at most 10). Each window opens after a full GC (\`--expose-gc\`) and a 200 ms pause, so V8's collection of the setup's buffers and the kernel's deferred work are not charged to the call:`, ''];
  out.push(`| form | preserve ${sizeLabel(largest)} | retrieve + finish ${sizeLabel(largest)} | worst over all sizes |${firstHead}`, `|---|---|---|---|${firsts.length ? '---|' : ''}`);
  // C first: the same calls on one thread while a second one sleeps 1 ms
  // at a time (bench/luo-bench.c's ticker), the kernel's share; then the
  // same calls from a libuv loop, each on its pool (bench/luo-bench-uv.c),
  // the Promise forms' shape without V8. The goal's mark is on the Node
  // forms only.
  const forms = [
    ['c', 'C: the same calls one at a time, a second thread waking every 1 ms'],
    ['c-uv', "C + libuv: the same calls one at a time, each on libuv's pool, a 1 ms timer on the loop"],
    ...SWEEP_FORMS.filter(([i]) => i === 'node-promise' || i === 'node-concurrent'),
  ];
  for (const [impl, label] of forms) {
    const mine = rows.filter((x) => x.impl === impl);
    if (!mine.length) continue;
    const get = (op) => mine.find((x) => x.op === op && x.size === largest)?.eldMaxMs;
    const worst = Math.max(...mine.map((x) => x.eldMaxMs));
    const f = (v) => (v === undefined ? '–' : `${v.toFixed(1)}${v > 10 && impl.startsWith('node') ? ' ✗' : ''}`);
    const first = (op) => firsts.find((x) => x.impl === impl && x.op === op)?.eldMaxMs;
    const firstCell = firsts.length ? ` ${f(first('sweep-preserve-first'))}, ${f(first('sweep-retrieve-first'))} |` : '';
    out.push(`| ${label} | ${f(get('sweep-preserve'))} | ${f(get('sweep-retrieve'))} | ${f(worst)} |${firstCell}`);
  }
  // Node core's own Promise call on the same files: how long the loop
  // stalls when any kernel work of that size runs on the libuv pool here.
  // And the machine's own: the loop idle on a timer in the same windows.
  const floors = [
    ['node-core', 'sweep-read-floor', "Node core's floor: `fs.read` of the same files into a Buffer, one at a time", `reading ${sizeLabel(largest)}`],
    ['node-core-concurrent', 'sweep-read-floor', "Node core's floor: `fs.read` of the same files, all at once", `reading ${sizeLabel(largest)}`],
    ['idle', 'sweep-idle-floor', 'The loop idle: nothing on the pool, a timer as long as the one-at-a-time preserve took', `as long as ${sizeLabel(largest)}'s`],
  ];
  for (const [impl, op, label, what] of floors) {
    const floor = rows.filter((x) => x.op === op && x.impl === impl);
    if (!floor.length) continue;
    const big = floor.find((x) => x.size === largest)?.eldMaxMs;
    out.push(`| ${label} | ${big === undefined ? '–' : big.toFixed(1)} (${what}) | – | ${Math.max(...floor.map((x) => x.eldMaxMs)).toFixed(1)} |${firstDash}`);
  }
  if (rows.some((x) => x.op === 'sweep-read-floor')) {
    const cpus = r.guest?.cpus ?? 1;
    const cRow = rows.some((x) => x.impl === 'c') ? ` The C row is the kernel\'s share with no Node in the way: a thread waiting while another makes the same calls ${cpus === 1 ? 'on the same CPU' : 'beside it'} (its ticker sleeps 1 ms at a time with \`nanosleep\`; on the host a window without a stall reads 1.1–1.3 ms with either). ` : ' ';
    const uvRow = rows.some((x) => x.impl === 'c-uv') ? 'The C + libuv row is the Promise forms\' own shape with no V8: a libuv loop whose 1 ms timer is watched as Node\'s is, each call queued to libuv\'s pool (`uv_queue_work`) from the previous one\'s completion, so what a Node row shows above it is V8\'s and the library\'s. ' : '';
    const shape = cpus === 1
      ? 'On one emulated CPU the libuv worker doing the kernel work shares the CPU with the loop (the guest kernel\'s default lazy preemption hands it back at the next tick), so a large in-kernel operation can stall it; Node core\'s own `fs.read` of the same files, in the same form, is the comparison. Started all at once, Node core\'s reads are all submitted before the loop gets a turn and each worker woken runs first on the one CPU, so the loop waits for the whole burst.'
      : `The guest has ${cpus} emulated CPUs, so the libuv worker doing the kernel work can run beside the loop, as on any multi-core host; Node core\'s own \`fs.read\` of the same files, in the same form, is the comparison.`;
    out.push('', shape + ` The library\'s Promise calls take turns on the pool (at most one per CPU, so ${cpus === 1 ? 'one' : cpus} here: lib/pool-gate.ts), so a burst of them stalls the loop for the calls\' own synchronous part (16 calls checked, their fds duplicated and queued before the loop gets a turn) and ${cpus === 1 ? 'one call\'s' : 'the calls\''} kernel work.${windowsSentence(rows)}` + cRow + uvRow + 'The idle row is what a window shows with nothing to do: the machine\'s own stalls, which any row includes.' + (firsts.length ? ' The last column is one window a process: its first, made before the per-size ones and left out of them: ' + (firsts.some((x) => x.opened === 'open()')
      ? 'the library\'s code for the calls has not run yet, as in a service\'s first live update. Each process opened the device with its form\'s API (`LiveUpdate.open()`; C + libuv on its pool), so libuv\'s pool, which starts its threads on first use, was running already, as in a service that has done any asynchronous work before.'
      : 'the library\'s code has not run yet and libuv\'s pool starts its threads on first use, as in a service\'s first live update; C + libuv\'s first window starts the pool too.') : ''));
  }
  return out;
}

function liveUpdateMarkdown(r) {
  const l = r.liveUpdate;
  const rows = r.rows.filter((x) => x.op === 'restore-from-start');
  const out = [];
  if (l) {
    out.push('', `**The live update itself**, stamped by the host as the guest's console lines arrive: from the line printed just before \`reboot(LINUX_REBOOT_CMD_KEXEC)\` to the new kernel's init announcing stage 2: ${(l.rebootToInitMs / 1000).toFixed(2)} s${l.rebootToStage2Ms !== undefined ? `; to the stage-2 bench process's first line ${(l.rebootToStage2Ms / 1000).toFixed(2)} s` : ''}${l.newKernelUptimeMs !== undefined ? `, of which the new kernel had been up ${(l.newKernelUptimeMs / 1000).toFixed(2)} s (its boot to that line) and ${(l.handoverMs / 1000).toFixed(2)} s came before its clock started (old kernel's shutdown, KHO handover, the jump)` : ''}. All under emulation.`);
  }
  if (rows.length) {
    const get = (lib, impl) => rows.find((x) => x.lib === lib && x.impl === impl)?.us.median;
    const c = get('c', 'c');
    const parts = [`C ${msCell(c / 1000)} ms`];
    for (const lib of [...new Set(rows.map((x) => x.lib))].filter((x) => x !== 'c')) {
      for (const impl of ['node-sync', 'node-promise']) {
        const v = get(lib, impl);
        if (v !== undefined) parts.push(`Node ${impl === 'node-sync' ? 'sync' : 'Promise'}${lib === 'node' ? '' : ` (${lib === 'base' ? 'before' : lib})`} ${msCell(v / 1000)} ms (${(v / c).toFixed(1)}×)`);
      }
    }
    out.push('', `**From process start in the new kernel to all files retrieved, verified and the session finished** (${r.stage2?.restoreFiles} × ${(r.stage2?.restoreBytes ?? 0) >> 20} MiB; timed from the parent's spawn, so exec, Node's start-up and loading the library count): ${parts.join(', ')}.`);
  }
  return out;
}

function msCell(ms) {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

// README.md shows the latest report between its bench markers; the prose
// around them is written by hand.
function updateReadme(md) {
  const file = path.join(root, 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) {
    report('README.md has no bench markers; left as is\n');
    return;
  }
  // Links in bench.md are relative to bench/results/.
  const body = md.trim().replace('](sweep.svg)', '](bench/results/sweep.svg)');
  fs.writeFileSync(file, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
  report('README.md: the table between the bench markers is this run\'s\n');
}

function markdown(r) {
  const find = (stage, op, lib, impl) => r.rows.find((x) => x.stage === stage && x.op === op && x.lib === lib && x.impl === impl)?.us;
  const fmt = (s) => (s ? `${num(s.median)}${s.n > 1 ? ` (${num(s.min)}–${num(s.max)})` : ''}` : '–');
  const ratio = (s, c) => (s && c ? `${(s.median / c.median).toFixed(1)}×` : '–');
  const cFstat = find(1, 'fstat', 'c', 'c');
  // Each library's floor from its own processes (the same Node, so these agree up to noise).
  const floorOf = (lib) => {
    const n = find(1, 'fstat', lib, 'node-sync');
    return cFstat && n ? n.median - cFstat.median : undefined;
  };
  const floor = floorOf('node');
  const libs = [...new Set(r.rows.map((x) => x.lib).filter((l) => l !== 'c' && l !== 'python'))];
  const name = (lib) => (lib === 'node' ? `this tree (${r.commit})` : `the library at ${r.baseline?.ref}${r.baseline?.ref === r.baseline?.commit ? '' : ` (${r.baseline?.commit})`}`);
  const head = ['operation (count)', 'C µs/op', 'Python µs/op', '×C'];
  for (const lib of libs) {
    const tag = libs.length > 1 ? (lib === 'node' ? ' — after' : ' — before') : '';
    head.push(`Node sync${tag}`, `×C`, `Node Promise${tag}`, `×C`, `sync excess / floor`);
  }
  const out = [];
  out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  const ops = ['create-close', 'create-close-raw', 'preserve', 'preserve-raw', 'get-name', 'get-name-raw', 'retrieve-finish', 'restore-verify', 'fstat', 'open-close'];
  for (const op of ops) {
    const stage = op === 'retrieve-finish' || op.startsWith('restore-') ? 2 : 1;
    // The addon-alone rows compare with the C row of the same operation.
    const cOp = op.replace(/-raw$/, '');
    const c = find(stage, cOp, 'c', 'c');
    if (!c || !r.rows.some((x) => x.op === op)) continue;
    const count = r.samples.find((x) => x.op === cOp && x.lib === 'c')?.n;
    const py = op === cOp ? find(stage, op, 'python', 'python') : undefined;
    const cells = [`${LABEL[op]} (×${count})`, fmt(c), fmt(py), ratio(py, c)];
    for (const lib of libs) {
      const s = find(stage, op, lib, 'node-sync');
      const p = find(stage, op, lib, 'node-promise');
      const f = floorOf(lib);
      // Stage 2 rows against stage 2's own floor (same boot, same process,
      // same number of calls before), when the run has one.
      const paired = pairedExcess(r.samples, op, cOp, lib, stage);
      const excess = paired !== undefined ? paired.toFixed(2) : s && f && CALLS[op] ? `${((s.median - c.median) / CALLS[op] / f).toFixed(2)}` : '–';
      cells.push(fmt(s), ratio(s, c), fmt(p), ratio(p, c), excess);
    }
    out.push(`| ${cells.join(' | ')} |`);
  }
  const g = r.guest ?? {};
  const retrieveVsStage1 = (() => {
    const [n, c, f] = [find(2, 'retrieve-finish', 'node', 'node-sync'), find(2, 'retrieve-finish', 'c', 'c'), floorOf('node')];
    return n && c && f ? ((n.median - c.median) / CALLS['retrieve-finish'] / f).toFixed(2) : undefined;
  })();
  return [
    `Per-operation times in µs: the median over ${r.passes} passes (stage 1) or ${r.stage2?.reps ?? 1} (stage 2 retrieve; restore runs once), (min–max) beside it.`,
    '',
    ...out,
    '',
    `- After the kexec each session can be retrieved only once. The retrieve row's process first restores two other sessions untimed, of ${r.stage2?.warmFiles ?? 500} then ${r.stage2?.files ?? 500} empty memfds (C and Node alike; Node with \`--single-threaded\`, as in stage 1), pauses 200 ms, then times one: warm code, as in stage 1. The second is there because V8 throws away the code it optimized during the first when the first session's close goes through it (a new map), and optimizes it again for both during the second. The restore row is one cold run per process, the live update as a service sees it.`,
    '- Promise forms run one call at a time (each awaited); their get_name and floor loops are capped at 1000 calls.',
    '- **Python**: the same sequences with `fcntl.ioctl` and hand-packed structs (bench/luo_bench.py), the peer issue 8 asks to beat.',
    `- **sync excess / floor**: (Node sync − C) per native call, over Node core's own excess for one call, (Node \`fs.fstatSync\` − C \`fstat\`) = ${floor === undefined ? '–' : `${num(floor)} µs`} (medians). Issue 8's goal is ≤ 1.2. Rows take it pass by pass (each pass's C, Node and floor measured within a minute of each other) and show the median of those ratios: the emulator's speed drifts between passes by up to 2×, for C as for Node. The after-kexec retrieve row is set against the floor of its own boot and process (\`fs.fstatSync\` and C's \`fstat\` right after it, with as many calls made before as the row had)${retrieveVsStage1 === undefined ? '' : `; against stage 1's warm floor it would be ${retrieveVsStage1}`}.`,
    '- Every stage-1 loop starts after a 200 ms pause (C, Python and Node alike), so the kernel\'s deferred clean-up of the loop before (freed files, RCU) does not land in it, and each pass runs the implementations in a rotated order.',
    '- Node\'s sync rows are each warmed with at least 2000 calls before any is timed, then timed in 5 rounds, interleaved (the order rotated each round and reversed every other), and the median round counts: under emulation V8 takes that many calls to settle, and a row timed right after another inherited its clean-up.',
    '- Node stage-1 passes run with V8\'s `--single-threaded` (the optimizing compiler and the GC work on the main thread, as on a 1-vCPU guest they get no CPU of their own anyway): there, with background threads taking turns on the one CPU, when code got optimized moved the same Node row ×2–4 between passes. Node core\'s floor rows run the same way.',
    libs.length > 1 ? `- *before* is ${name('base')}, *after* is ${name('node')}, measured pass for pass in the same boot.` : `- Library: ${name('node')}.`,
    `- Guest: Linux ${r.kernel} under QEMU, ${r.host.accel}, ${g.memoryMiB ?? '?'} MiB, ${g.node ?? r.host.node}. Absolute times are those of an emulated CPU, not of hardware: the ratios are the point.`,
    `- Host: ${r.host.cpu}, ${r.host.cores} cores, ${r.host.memoryGiB} GiB, Linux ${r.host.kernel}; load average at start ${r.host.loadavg.join(', ')}.`,
    `- Counts: ${r.counts.sessions} sessions, ${r.counts.files} memfds, ${r.counts.getnames} get_name, ${r.counts.floor} fstat and open+close per pass${r.stage2 ? `; after the kexec ${r.stage2.files} files per session, ${r.stage2.restoreFiles} × ${r.stage2.restoreBytes >> 20} MiB restored` : ''}.`,
    `- Run ${r.date}, in ${duration(r.vmWallMs)} of VM time. Reproduce: \`${r.command}\`.`,
    ...loopDelayMarkdown(r),
    ...liveUpdateMarkdown(r),
    ...sweepMarkdown(r),
    ...(r.skipped?.length ? ['', `Skipped: ${r.skipped.join('; ')}.`] : []),
    ...(r.errors.length ? ['', `**Errors:** ${r.errors.join('; ')}`] : []),
    '',
  ].join('\n');
}

function num(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}
