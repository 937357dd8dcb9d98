import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Reporter } from './progress';

/** Debian packages the VM tooling needs, and how to tell each is there. */
export const HOST_PACKAGES: ReadonlyArray<{ pkg: string; present: () => boolean }> = [
  { pkg: 'qemu-system-x86', present: () => onPath('qemu-system-x86_64') },
  { pkg: 'flex', present: () => onPath('flex') },
  { pkg: 'bison', present: () => onPath('bison') },
  { pkg: 'bc', present: () => onPath('bc') },
  { pkg: 'make', present: () => onPath('make') },
  { pkg: 'gcc', present: () => onPath('gcc') },
  { pkg: 'xz-utils', present: () => onPath('xz') },
  { pkg: 'libelf-dev', present: () => fs.existsSync('/usr/include/libelf.h') },
  { pkg: 'libssl-dev', present: () => fs.existsSync('/usr/include/openssl/ssl.h') },
  // The systemd VM: its Debian sid root filesystem, and the per-run ext4 image of it.
  { pkg: 'mmdebstrap', present: () => onPath('mmdebstrap') },
  { pkg: 'e2fsprogs', present: () => onPath('mke2fs') || fs.existsSync('/usr/sbin/mke2fs') },
];

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => {
    try {
      fs.accessSync(`${dir}/${cmd}`, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Installs the missing packages with apt-get when running as root; otherwise
 * throws with the exact command to run. `packages`: the VM tooling's by
 * default (the bench adds the one its libuv reference needs).
 */
export function ensureHostPackages(report: Reporter, packages: typeof HOST_PACKAGES = HOST_PACKAGES): void {
  const missing = packages.filter((p) => !p.present()).map((p) => p.pkg);
  if (missing.length === 0) return;
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`the VM tier needs these Debian packages: ${missing.join(', ')}. As root, run: apt-get update && ${command}`);
  }
  report(`installing ${missing.join(', ')} with apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', command.split(' ').slice(1).concat('-qq'), { stdio: ['ignore', 'ignore', 'inherit'], env });
}
