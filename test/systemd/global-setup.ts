// The systemd tier: systemd 262 as PID 1 on the LUO kernel. Builds (or takes
// from the cache) the kernel and a Debian sid root filesystem, boots them
// with the units in ./units, and lets the guest go through a real
// `systemctl kexec` live update and power off. The guest's reports and the
// host-side times of its console markers go to the tests in this folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheRoot, duration, ensureHostPackages, ensureKernel, ensureRootfs, installUnits, onHost, runSystemdVm, stderrReporter } from '../../lib/vm/index';
import { MARK, type SystemdRecord } from './record.mjs';

export interface SystemdRun {
  kernelVersion: string;
  systemdVersion: string;
  records: SystemdRecord[];
  exitCode: number | null;
  timedOut: boolean;
  consoleLog: string;
  /** The last console lines, for failure messages. */
  consoleTail: string;
  /** Host-side times in ms since QEMU started, of the guest's markers (see record.mts). */
  marks: Record<string, number>;
  rootfsMs: number;
  imageMs: number;
  wallMs: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    systemd: SystemdRun;
  }
}

const root = path.resolve(__dirname, '../..');

export default async function setup(project: TestProject): Promise<void> {
  const report = stderrReporter('[systemd-vm]');
  ensureHostPackages(report);
  const kernel = await ensureKernel({ report });
  const rootfsStarted = Date.now();
  const rootfs = await ensureRootfs({ report });
  const rootfsMs = Date.now() - rootfsStarted;

  // Live updates before power-off: 1 for the tests; more to see what systemd
  // does on later ones (the tests hold for any number, boot 2 is checked).
  const kexecs = Number(process.env.LIVEUPDATE_SYSTEMD_KEXECS ?? 1);
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-systemd-'));
  const consoleLog = path.join(outDir, 'console.log');
  const log = fs.createWriteStream(consoleLog);
  const marks: Record<string, number> = {};
  report(`booting ${kernel.version} with systemd ${rootfs.versions.systemd} as PID 1; console: ${consoleLog}\n`);
  const run = await runSystemdVm({
    kernel: kernel.bzImage,
    rootfs: rootfs.dir,
    outDir,
    workDir: path.join(cacheRoot(), 'vm'),
    files: {
      ...installUnits(path.join(__dirname, 'units')),
      '/etc/liveupdate-vm.env': { content: `LIVEUPDATE_VM_KERNEL=${onHost(kernel.bzImage)}\nLIVEUPDATE_VM_KEXECS=${kexecs}\n` },
      // The units run this checkout's programs from a fixed place.
      '/opt/liveupdate': { symlink: onHost(root) },
    },
    onConsole: (line, ms) => {
      // Host seconds first: the guest's own clock says little under emulation and across kexec.
      log.write(`${(ms / 1000).toFixed(1).padStart(6)} ${line}\n`);
      const at = line.indexOf(MARK);
      if (at < 0) return;
      // Journal forwarding prefixes the line; the first sighting counts.
      const what = line.slice(at + MARK.length).trim().split(':')[0]!;
      if (!(what in marks)) {
        marks[what] = ms;
        report(`${duration(ms)}: ${line.slice(at)}\n`);
      }
    },
  });
  await new Promise((resolve) => log.end(resolve));
  const resultsFile = path.join(outDir, 'systemd.jsonl');
  const records = fs.existsSync(resultsFile)
    ? fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SystemdRecord)
    : [];
  report(`systemd VM finished in ${duration(run.wallMs)} (exit ${run.exitCode}${run.timedOut ? ', timed out' : ''})\n`);
  project.provide('systemd', {
    kernelVersion: kernel.version,
    systemdVersion: rootfs.versions.systemd ?? 'unknown',
    records,
    exitCode: run.exitCode,
    timedOut: run.timedOut,
    consoleLog,
    consoleTail: run.console.split('\n').slice(-60).join('\n'),
    marks,
    rootfsMs,
    imageMs: run.imageMs,
    wallMs: run.wallMs,
  });
}
