// The systemd tier: systemd 262 as PID 1 on the LUO kernel. Builds (or takes
// from the cache) the kernel and a Debian sid root filesystem, boots them
// with the shipped units (examples/systemd/vmm.service, systemd/liveupdate.*)
// and the test's own in ./units, and lets the guest live-update itself
// through `systemctl kexec` (twice by default) and power off. The guest's
// reports, vmm.service's output and the host-side times of console markers
// go to the tests in this folder.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { cacheRoot, duration, ensureHostPackages, ensureKernel, ensureRootfs, installUnits, onHost, runSystemdVm, stderrReporter } from '../../lib/vm/index';
import { MARK, type SystemdRecord } from './record.mjs';

/** A line vmm.service (the shipped example) printed, as the console showed it. */
export interface VmmLine {
  /** 1 for the fresh boot, 2 after the first live update, ... */
  boot: number;
  /** Host milliseconds since QEMU started. */
  ms: number;
  /** From "vmm: " on. */
  text: string;
}

export interface SystemdRun {
  /** Live updates the guest was asked to go through. */
  kexecs: number;
  vmm: VmmLine[];
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

  // Live updates before power-off: two, so the second shows what a service
  // must do after the first (see renewLuoSession).
  const kexecs = Number(process.env.LIVEUPDATE_SYSTEMD_KEXECS ?? 2);
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-systemd-'));
  // Services of other uids report here too (9p shows the host's mode bits).
  fs.chmodSync(outDir, 0o755);
  const resultsFile = path.join(outDir, 'systemd.jsonl');
  fs.writeFileSync(resultsFile, '');
  fs.chmodSync(resultsFile, 0o666);
  const consoleLog = path.join(outDir, 'console.log');
  const log = fs.createWriteStream(consoleLog);
  const marks: Record<string, number> = {};
  const vmm: VmmLine[] = [];
  // The kernel's timestamp (the first bracket) starts again at each boot.
  let boot = 1;
  let lastStamp = 0;
  report(`booting ${kernel.version} with systemd ${rootfs.versions.systemd} as PID 1; console: ${consoleLog}\n`);
  const run = await runSystemdVm({
    kernel: kernel.bzImage,
    rootfs: rootfs.dir,
    outDir,
    workDir: path.join(cacheRoot(), 'vm'),
    timeoutMs: (5 + 3 * kexecs) * 60_000,
    files: {
      ...installUnits(path.join(root, 'examples/systemd')),
      ...installUnits(path.join(root, 'systemd')),
      ...installUnits(path.join(__dirname, 'units')),
      // Where `npm install -g liveupdate` puts the CLI; liveupdate.service runs it from PATH.
      '/usr/local/bin/liveupdate': { symlink: '/opt/liveupdate/bin/liveupdate.js' },
      '/etc/liveupdate-vm.env': { content: `LIVEUPDATE_VM_KERNEL=${onHost(kernel.bzImage)}\nLIVEUPDATE_VM_KEXECS=${kexecs}\n` },
      // The units run this checkout's programs from a fixed place.
      '/opt/liveupdate': { symlink: onHost(root) },
    },
    onConsole: (line, ms) => {
      // Host seconds first: the guest's own clock says little under emulation and across kexec.
      log.write(`${(ms / 1000).toFixed(1).padStart(6)} ${line}\n`);
      const stamp = /^\[\s*(\d+\.\d+)\]/.exec(line);
      if (stamp) {
        if (Number(stamp[1]) < lastStamp) boot++;
        lastStamp = Number(stamp[1]);
      }
      const said = line.indexOf('vmm: ');
      if (said >= 0) vmm.push({ boot, ms, text: line.slice(said) });
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
  const records = fs.existsSync(resultsFile)
    ? fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SystemdRecord)
    : [];
  report(`systemd VM finished in ${duration(run.wallMs)} (exit ${run.exitCode}${run.timedOut ? ', timed out' : ''})\n`);
  project.provide('systemd', {
    kexecs,
    vmm,
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
