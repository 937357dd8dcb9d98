// Boots the LUO kernel with systemd as PID 1: a fresh ext4 image of the
// cached Debian sid tree on virtio-blk, the host's / read-only over 9p (for
// the host's node and this checkout) and a writable 9p share for results.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ImageFile, makeImage } from './disk-image';
import { GUEST_TIMER_PARAMS, type VmRunResult, machineArgs, qemuOpt, runQemu } from './qemu';

/** Where the guest sees the host's `/` (read-only). */
export const GUEST_HOST_ROOT = '/host';
/** Where the guest sees {@link SystemdVmOptions.outDir} (writable). */
export const GUEST_OUT = '/vmout';
/** The host's node, as the guest runs it (see {@link baseFiles}). */
export const GUEST_NODE = '/usr/local/bin/node';

/** `p` on the host, as the guest sees it. */
export const onHost = (p: string) => path.posix.join(GUEST_HOST_ROOT, path.resolve(p));

export interface SystemdVmOptions {
  /** The bzImage to boot. */
  kernel: string;
  /** The root filesystem tree (see `ensureRootfs`); copied, never changed. */
  rootfs: string;
  /** The run's own files (units, scripts, ...), by absolute guest path. */
  files?: Record<string, ImageFile>;
  /** A writable host directory, the guest's {@link GUEST_OUT}. */
  outDir: string;
  /** Where the run's disk image is written (and removed afterwards). */
  workDir: string;
  /** Words added to the kernel command line. */
  cmdline?: string[];
  /** Gives up and kills QEMU after this long; 10 minutes by default. */
  timeoutMs?: number;
  /** Every line of the serial console, with milliseconds since QEMU started. */
  onConsole?: (line: string, ms: number) => void;
  memory?: string;
  /** Virtual CPUs; see {@link defaultCpus}. */
  cpus?: number;
}

export interface SystemdVmResult extends VmRunResult {
  /** Each console line with the milliseconds since QEMU started, as the host saw it. */
  lines: Array<{ ms: number; line: string }>;
  /** Time spent writing the disk image, before QEMU started. */
  imageMs: number;
}

/**
 * The kernel command line: root on the virtio disk, LUO and KHO on, and no
 * minimum uptime (systemd would otherwise delay a kexec soon after boot).
 * Journal lines go to the console too, so a failed run's console says why.
 */
export function systemdCmdline(extra: string[] = []): string {
  return [
    'console=ttyS0', 'root=/dev/vda', 'rw', 'rootfstype=ext4', 'liveupdate=on', 'kho=on',
    'systemd.minimum_uptime_sec=0', 'systemd.journald.forward_to_console=1', 'panic=-1', 'loglevel=4',
    ...GUEST_TIMER_PARAMS, ...extra,
  ].join(' ');
}

/**
 * What every image gets: the 9p mounts in fstab, a machine id (an empty one
 * would make systemd run first-boot setup, which asks on the console), and
 * the host's node at {@link GUEST_NODE}.
 */
export function baseFiles(node = process.execPath): Record<string, ImageFile> {
  const p9 = 'trans=virtio,version=9p2000.L';
  return {
    '/etc/fstab': {
      content:
        `# The host's / (its node and this checkout), and the results share.\n` +
        `hostroot ${GUEST_HOST_ROOT} 9p ${p9},ro,cache=loose 0 0\n` +
        `vmout ${GUEST_OUT} 9p ${p9} 0 0\n`,
    },
    '/etc/machine-id': { content: `${randomBytes(16).toString('hex')}\n`, mode: 0o444 },
    '/etc/hostname': { content: 'liveupdate-vm\n' },
    [GUEST_NODE]: { symlink: onHost(node) },
  };
}

/**
 * Makes a fresh disk image of `rootfs` plus {@link baseFiles} and `files`,
 * boots `kernel` on it with systemd as init, and returns when QEMU exits
 * (the guest powered off) or was killed at the timeout. The image is
 * removed afterwards.
 */
export async function runSystemdVm(options: SystemdVmOptions): Promise<SystemdVmResult> {
  fs.mkdirSync(options.workDir, { recursive: true });
  const image = path.join(options.workDir, `systemd-vm-${process.pid}-${Date.now()}.ext4`);
  const imageStarted = Date.now();
  try {
    await makeImage(options.rootfs, { ...baseFiles(), ...options.files }, image);
    const imageMs = Date.now() - imageStarted;
    const args = [
      ...machineArgs(options),
      // cache=unsafe: the image is thrown away after the run, so host flushes buy nothing.
      '-drive', `file=${qemuOpt(image)},format=raw,if=virtio,cache=unsafe`,
      '-append', systemdCmdline(options.cmdline),
    ];
    const lines: SystemdVmResult['lines'] = [];
    const started = Date.now();
    const run = await runQemu(args, {
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      onConsole: (line) => {
        const ms = Date.now() - started;
        lines.push({ ms, line });
        options.onConsole?.(line, ms);
      },
    });
    return { ...run, lines, imageMs };
  } finally {
    fs.rmSync(image, { force: true });
  }
}
