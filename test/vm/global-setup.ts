// The real-kernel tier: builds (or takes from the cache) a LUO kernel, boots
// it under QEMU with this checkout as the guest's workload, lets the guest
// run its stage-1 cases, kexec into stage 2 and run those, then hands the
// results to the tests in this folder (one test per guest case).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheRoot, duration, ensureHostPackages, ensureKernel, runVm, stderrReporter } from '../../lib/vm/index';
import type { GuestResult } from '../guest/harness.mjs';

export interface VmRun {
  kernelVersion: string;
  results: GuestResult[];
  exitCode: number | null;
  timedOut: boolean;
  wallMs: number;
  consoleLog: string;
  consoleText: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The guest test suite (test/guest) across a kexec. */
    vm: VmRun;
    /** examples/keep-guest-ram.mjs across a kexec. */
    example: VmRun;
  }
}

const root = path.resolve(__dirname, '../..');

export default async function setup(project: TestProject): Promise<void> {
  const report = stderrReporter('[vm]');
  ensureHostPackages(report);
  const kernel = await ensureKernel({ report });

  async function boot(what: string, script: string): Promise<VmRun> {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-vm-'));
    const consoleLog = path.join(outDir, 'console.log');
    const log = fs.createWriteStream(consoleLog);
    report(`booting ${kernel.version} under QEMU for ${what}; console: ${consoleLog}\n`);
    const run = await runVm({
      kernel: kernel.bzImage,
      argv: [process.execPath, path.join(root, script)],
      cwd: root,
      outDir,
      workDir: path.join(cacheRoot(), 'vm'),
      onConsole: (line) => {
        log.write(`${line}\n`);
        if (/^(liveupdate-vm:|not ok |guest RAM)|Kernel panic/.test(line)) report(`${line}\n`);
      },
    });
    await new Promise((resolve) => log.end(resolve));
    const resultsFile = path.join(outDir, 'results.jsonl');
    const results: GuestResult[] = fs.existsSync(resultsFile)
      ? fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as GuestResult)
      : [];
    report(`${what}: VM finished in ${duration(run.wallMs)}\n`);
    return { kernelVersion: kernel.version, results, exitCode: run.exitCode, timedOut: run.timedOut, wallMs: run.wallMs, consoleLog, consoleText: run.console };
  }

  const vm = await boot('the guest test suite', 'build/guest/run.mjs');
  report(`${vm.results.filter((r) => r.ok).length}/${vm.results.length} guest cases passed\n`);
  project.provide('vm', vm);
  project.provide('example', await boot('examples/keep-guest-ram.mjs', 'examples/keep-guest-ram.mjs'));
}
