// The real-kernel tier: builds (or takes from the cache) a LUO kernel, boots
// it under QEMU with this checkout as the guest's workload, lets the guest
// run its stage-1 cases, kexec into stage 2 and run those, then hands the
// results to the tests in this folder (one test per guest case).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { spawnSync } from 'node:child_process';
import { buildKernelSelftests, cacheRoot, duration, ensureHostPackages, ensureKernel, runVm, stderrReporter } from '../../lib/vm/index';
import type { GuestResult } from '../guest/harness.mjs';
import type { BrokerStep } from '../guest/broker.mjs';
import type { OperatorStep } from '../guest/operator.mjs';
import type { ParityLine } from '../guest/parity.mjs';

export interface VmRun {
  kernelVersion: string;
  results: GuestResult[];
  exitCode: number | null;
  timedOut: boolean;
  wallMs: number;
  consoleLog: string;
  consoleText: string;
}

/** What a `liveupdate` command printed, and its exit status. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The guest test suite (test/guest/cases.mts) across a kexec. */
    vm: VmRun;
    /** The kernel's C selftests and their port (test/guest/parity.mts) across a kexec. */
    parity: VmRun & { lines: ParityLine[] };
    /** The README example, through the `liveupdate vm run` command. */
    example: CliRun;
    /** The broker example through `liveupdate vm run`. */
    brokerExample: CliRun;
    /** `liveupdate vm selftest --tap`. */
    vmSelftest: CliRun;
    /** The operator's flow through the command (test/guest/operator.mts). */
    operator: VmRun & { steps: OperatorStep[] };
    /** The broker with clients of several uids (test/guest/broker.mts). */
    broker: VmRun & { steps: BrokerStep[] };
  }
}

const root = path.resolve(__dirname, '../..');

export default async function setup(project: TestProject): Promise<void> {
  const report = stderrReporter('[vm]');
  ensureHostPackages(report);
  const kernel = await ensureKernel({ report });

  async function boot(what: string, script: string, env: Record<string, string> = {}): Promise<VmRun & { outDir: string }> {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-vm-'));
    const consoleLog = path.join(outDir, 'console.log');
    const log = fs.createWriteStream(consoleLog);
    report(`booting ${kernel.version} under QEMU for ${what}; console: ${consoleLog}\n`);
    const run = await runVm({
      kernel: kernel.bzImage,
      argv: [process.execPath, path.join(root, script)],
      cwd: root,
      env,
      outDir,
      workDir: path.join(cacheRoot(), 'vm'),
      onConsole: (line) => {
        log.write(`${line}\n`);
        if (/^(liveupdate-vm:|not ok )|Kernel panic/.test(line)) report(`${line}\n`);
      },
    });
    await new Promise((resolve) => log.end(resolve));
    const results = readJsonLines<GuestResult>(path.join(outDir, 'results.jsonl'));
    report(`${what}: VM finished in ${duration(run.wallMs)}\n`);
    return { kernelVersion: kernel.version, results, exitCode: run.exitCode, timedOut: run.timedOut, wallMs: run.wallMs, consoleLog, consoleText: run.console, outDir };
  }

  // FUZZ_SEED replays the guest fuzz (test/guest/fuzz.mts) with the seed a run printed.
  const vm = await boot('the guest test suite', 'build-test/guest/run.mjs', process.env.FUZZ_SEED !== undefined ? { FUZZ_SEED: process.env.FUZZ_SEED } : {});
  report(`${vm.results.filter((r) => r.ok).length}/${vm.results.length} guest cases passed\n`);
  project.provide('vm', vm);

  if (!kernel.sourceDir) throw new Error('selftest parity needs the kernel source: unset LIVEUPDATE_KERNEL to build the kernel here');
  const c = await buildKernelSelftests(kernel.sourceDir, path.join(cacheRoot(), 'selftests', kernel.version.replace(/[^\w.+-]/g, '_')), report);
  const parity = await boot("the kernel's C selftests and their port", 'build-test/guest/parity.mjs', { LUO_C_SELFTESTS: c.dir });
  const lines = readJsonLines<ParityLine>(path.join(parity.outDir, 'parity.jsonl'));
  project.provide('parity', { ...parity, lines });
  report(`the kernel's C selftests beside their port:\n${sideBySide(lines)}`);

  const operator = await boot('an operator driving the liveupdate command', 'build-test/guest/operator.mjs');
  project.provide('operator', { ...operator, steps: readJsonLines<OperatorStep>(path.join(operator.outDir, 'operator.jsonl')) });

  const broker = await boot('the broker with clients of three uids', 'build-test/guest/broker.mjs');
  project.provide('broker', { ...broker, steps: readJsonLines<BrokerStep>(path.join(broker.outDir, 'broker.jsonl')) });

  report('running `liveupdate vm run examples/keep-guest-ram.mjs`\n');
  const cli = spawnSync(process.execPath, [path.join(root, 'bin/liveupdate.js'), 'vm', 'run', 'examples/keep-guest-ram.mjs'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 600_000,
  });
  project.provide('example', { status: cli.status, stdout: cli.stdout, stderr: cli.stderr });

  report('running `liveupdate vm run examples/broker-live-update.mjs`\n');
  const brokerExample = spawnSync(process.execPath, [path.join(root, 'bin/liveupdate.js'), 'vm', 'run', 'examples/broker-live-update.mjs'], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  project.provide('brokerExample', { status: brokerExample.status, stdout: brokerExample.stdout, stderr: brokerExample.stderr });

  report('running `liveupdate vm selftest --tap`\n');
  const selftest = spawnSync(process.execPath, [path.join(root, 'bin/liveupdate.js'), 'vm', 'selftest', '--tap'], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  project.provide('vmSelftest', { status: selftest.status, stdout: selftest.stdout, stderr: selftest.stderr });
}

function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/** One row per upstream case: what C and the port said, in each stage. */
function sideBySide(lines: ParityLine[]): string {
  const rows = new Map<string, { c?: boolean; js?: boolean }>();
  for (const l of lines) {
    const key = `${l.stage === 0 ? 'device ' : `stage ${l.stage}`}  ${l.name}`;
    rows.set(key, { ...rows.get(key), [l.suite]: l.ok });
  }
  const mark = (ok?: boolean) => (ok === undefined ? '  -  ' : ok ? ' pass' : ' FAIL');
  const width = Math.max(...[...rows.keys()].map((k) => k.length));
  return [`${'case'.padEnd(width)}      C   port`, ...[...rows].map(([k, v]) => `${k.padEnd(width)}  ${mark(v.c)}  ${mark(v.js)}${v.c !== v.js ? '  <- disagree' : ''}`)]
    .map((l) => `  ${l}\n`)
    .join('');
}
