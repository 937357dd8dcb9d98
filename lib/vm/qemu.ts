import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The kernel command-line word that tells the guest which stage it is in. */
export const STAGE_PARAM = 'liveupdate_vm_stage';

export interface VmRunOptions {
  /** The bzImage to boot; the guest kexecs into the same one. */
  kernel: string;
  /** The program to run as the guest's workload, on the host's paths (root is the host's, read-only). */
  argv: string[];
  /** Working directory of the workload; the host's current one by default. */
  cwd?: string;
  /** Extra environment for the workload. */
  env?: Record<string, string>;
  /** A writable host directory the guest sees as $LIVEUPDATE_VM_OUT (survives the kexec). */
  outDir: string;
  /** Where generated files (the init script) go. */
  workDir: string;
  /** Gives up and kills QEMU after this long; 15 minutes by default. */
  timeoutMs?: number;
  /** Every line of the serial console (kernel and workload output). */
  onConsole?: (line: string) => void;
  memory?: string;
  /** Virtual CPUs; see {@link defaultCpus}. */
  cpus?: number;
}

export interface VmRunResult {
  /** QEMU's exit code, or null if it was killed. */
  exitCode: number | null;
  timedOut: boolean;
  /** The whole serial console. */
  console: string;
  wallMs: number;
}

/**
 * On a busy host, TCG's emulated clock can fall far enough behind that the
 * kexec'd kernel's check that the timer interrupt reaches the IO-APIC fails,
 * and it panics ("IO-APIC + timer doesn't work!"; seen once in the VM tier
 * under load). The check is for broken BIOSes of real boards; QEMU's timer
 * is wired right, so skip it, in both boots (stage 2 inherits the line).
 */
export const GUEST_TIMER_PARAMS = ['no_timer_check'];

/**
 * Boots `kernel` under QEMU with the host's root filesystem shared
 * read-only over virtio-9p and runs `argv` as the guest's workload. The
 * workload finds its stage in $LIVEUPDATE_VM_STAGE (1, then 2 after a
 * kexec it triggers itself, see {@link nextStageCmdline}), and the guest
 * powers off when it exits.
 */
export function runVm(options: VmRunOptions): Promise<VmRunResult> {
  const init = writeInit(options);
  const args = [
    ...machineArgs(options),
    '-append', [
      'console=ttyS0', 'root=hostroot', 'rootfstype=9p', 'rootflags=trans=virtio,version=9p2000.L,cache=loose', 'ro',
      `init=${init}`, 'liveupdate=on', 'kho=on', 'panic=-1', 'loglevel=4', `${STAGE_PARAM}=1`, ...GUEST_TIMER_PARAMS,
    ].join(' '),
  ];
  return runQemu(args, options);
}

/**
 * What every VM of this project is: q35, KVM when usable (else TCG), no
 * display, no reboot (a guest reboot ends the run; kexec is not a reboot),
 * `kernel` booted directly, the host's `/` read-only as 9p tag `hostroot`
 * and `outDir` writable as tag `vmout`.
 */
export function machineArgs(options: { kernel: string; outDir: string; memory?: string; cpus?: number }): string[] {
  const kvm = kvmUsable();
  return [
    '-machine', 'q35',
    ...(kvm ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-m', options.memory ?? '2G',
    '-smp', String(options.cpus ?? defaultCpus(kvm)),
    '-nographic',
    '-no-reboot',
    '-kernel', options.kernel,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${qemuOpt(options.outDir)},mount_tag=vmout,security_model=none,multidevs=remap`,
  ];
}

/**
 * Runs qemu-system-x86_64 with `args` until it exits, or kills it after
 * `timeoutMs` (15 minutes by default), collecting the serial console.
 */
export function runQemu(args: string[], options: { timeoutMs?: number; onConsole?: (line: string) => void }): Promise<VmRunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let consoleText = '';
    let partial = '';
    let timedOut = false;
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8').replace(/\r/g, '');
      consoleText += text;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onConsole?.(line);
    };
    qemu.stdout.on('data', onData);
    qemu.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.kill('SIGKILL');
    }, options.timeoutMs ?? 15 * 60_000);
    qemu.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    qemu.on('close', (exitCode) => {
      clearTimeout(timer);
      if (partial) options.onConsole?.(partial);
      resolve({ exitCode, timedOut, console: consoleText, wallMs: Date.now() - started });
    });
  });
}

/** A value for a QEMU option: ',' is escaped by doubling it. */
export const qemuOpt = (value: string) => value.replace(/,/g, ',,');

/** KVM when the host offers it, else TCG software emulation (the CI machines). */
export function kvmUsable(): boolean {
  if (!/\b(vmx|svm)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))) return false;
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Two vCPUs under KVM, one under TCG: with two TCG vCPUs the kexec'd kernel
 * sometimes oopsed at boot ("Oops: int3" in sched_clock_cpu, 2 of about 7
 * runs holding ~2000 sessions), a stale breakpoint from the boot-time code
 * patching that the other emulated CPU still executed. One vCPU cannot race.
 */
export function defaultCpus(kvm = kvmUsable()): number {
  return kvm ? 2 : 1;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// The guest's init: mount what a program needs, run the workload with its
// stage, report its exit status, power off. The host's /tmp stays visible
// (read-only, like all of /) because checkouts and caches may live there;
// the guest's scratch space is a tmpfs on /run, passed as TMPDIR.
function writeInit(options: VmRunOptions): string {
  const env = {
    ...options.env,
    LIVEUPDATE_VM_KERNEL: options.kernel,
    LIVEUPDATE_VM_OUT: '/run/liveupdate-vm-out',
  };
  const script = `#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true # the kernel may have mounted it
mount -t tmpfs tmpfs /run
mkdir -p /run/tmp /run/liveupdate-vm-out
export HOME=/run/tmp TMPDIR=/run/tmp
mount -t 9p -o trans=virtio,version=9p2000.L vmout /run/liveupdate-vm-out
stage=$(sed -n 's/.*${STAGE_PARAM}=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
echo "liveupdate-vm: stage \${stage:-1} on $(uname -r)"
cd ${shellQuote(options.cwd ?? process.cwd())}
${Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n')}
export LIVEUPDATE_VM_STAGE=\${stage:-1}
${options.argv.map(shellQuote).join(' ')}
echo "liveupdate-vm: workload exited with status $? in stage \${stage:-1}"
sync
echo o > /proc/sysrq-trigger
# Power-off is asynchronous; no external command may run meanwhile (9p is
# going away), and init must not exit (that panics the kernel).
while :; do :; done
`;
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 12);
  fs.mkdirSync(options.workDir, { recursive: true });
  const file = path.join(options.workDir, `init-${hash}.sh`);
  // The kernel splits its command line at spaces: init= takes no quoting.
  if (/\s/.test(file)) throw new Error(`the VM work directory must not contain white space: ${options.workDir}`);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(`${file}.${process.pid}`, script, { mode: 0o755 });
    fs.renameSync(`${file}.${process.pid}`, file);
  }
  return file;
}

/**
 * The running kernel's command line with the stage marker moved to `stage`:
 * what a guest workload passes to kexec to continue in the next stage.
 */
export function nextStageCmdline(stage: number, current = fs.readFileSync('/proc/cmdline', 'utf8').trim()): string {
  const rest = current.split(/\s+/).filter((w) => w && !w.startsWith(`${STAGE_PARAM}=`));
  return [...rest, `${STAGE_PARAM}=${stage}`].join(' ');
}
