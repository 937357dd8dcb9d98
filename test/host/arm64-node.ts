// An arm64 Node to run the arm64 prebuilds under qemu-user: Debian's own
// `nodejs` for arm64 with the libraries it needs, extracted (not installed)
// by mmdebstrap into a sysroot and run as `qemu-aarch64 -L SYSROOT node`.
// Built once (about 25 s with the download) and cached in
// ~/.cache/liveupdate/arm64-node/, keyed by the versions of every package
// in it, so a new nodejs or libc6 in Debian makes a new sysroot.
import { execFile as execFileCb, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { debianMirror } from '../../lib/vm/apt-mirror';
import { lock } from '../../lib/vm/cache-lock';
import { ensureHostPackages } from '../../lib/vm/host-packages';
import { cacheRoot } from '../../lib/vm/kernel';
import { runMmdebstrap } from '../../lib/vm/rootfs';
import { type Reporter, duration } from '../../lib/vm/progress';

const execFile = promisify(execFileCb);

// trixie: its nodejs (20.19) meets the package's engines (>=20.19); bookworm's is 18.
const SUITE = 'trixie';
// Bump when the way the sysroot is built changes.
const RECIPE = 1;

export interface Arm64Node {
  /** The sysroot: qemu-aarch64's -L. */
  sysroot: string;
  /** The command line that runs arm64 node: `qemu-aarch64 -L sysroot sysroot/usr/bin/node`. */
  command: [string, ...string[]];
  /** Package name to version, everything in the sysroot. */
  versions: Record<string, string>;
}

/** Installs qemu-user when missing (as root; otherwise throws with the command to run). */
export function qemuAarch64(report: Reporter): string {
  ensureHostPackages(report); // mmdebstrap among them
  const found = ['/usr/bin/qemu-aarch64', '/usr/bin/qemu-aarch64-static'].find((p) => fs.existsSync(p));
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error('qemu-user is needed to run the arm64 prebuilds: apt-get install -y qemu-user');
  report('installing qemu-user (apt-get install -y --no-install-recommends qemu-user)\n');
  spawnSyncOrThrow('apt-get', ['install', '-y', '--no-install-recommends', 'qemu-user']);
  return '/usr/bin/qemu-aarch64';
}

function spawnSyncOrThrow(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
}

/** Returns the cached arm64 Node sysroot for today's Debian versions, building it when missing. */
export async function ensureArm64Node(report: Reporter, cache = cacheRoot()): Promise<Arm64Node> {
  const qemu = qemuAarch64(report);
  const root = path.join(cache, 'arm64-node');
  const release = await lock(path.join(cache, 'arm64-node.lock'), 'the arm64 Node sysroot', report);
  try {
    const mirror = debianMirror();
    report(`looking up nodejs for arm64 in Debian ${SUITE} (${mirror})\n`);
    const versions = await resolve(path.join(root, 'apt'), mirror);
    const pinned = Object.keys(versions).sort().map((p) => `${p}=${versions[p]}`).join('\n');
    const key = `${SUITE}-nodejs-${versions.nodejs!.replace(/[^\w.+-]/g, '_')}-${createHash('sha256').update(`${RECIPE}\n${pinned}`).digest('hex').slice(0, 12)}`;
    const sysroot = path.join(root, key);
    const result = { sysroot, command: [qemu, '-L', sysroot, path.join(sysroot, 'usr/bin/node')] as [string, ...string[]], versions };
    if (fs.existsSync(path.join(sysroot, '.complete'))) {
      report(`arm64 Node ${versions.nodejs} (cached: ${sysroot})\n`);
      return result;
    }
    const started = Date.now();
    const tmp = `${sysroot}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    await mmdebstrap(tmp, mirror, (line) => report(`building arm64 Node sysroot (nodejs ${versions.nodejs}, ${duration(Date.now() - started)}): ${line}\n`));
    // Merged /usr (trixie's libc6 has the loader in /usr/lib only): the links
    // that installing base-files would make, which extracting does not.
    for (const d of ['bin', 'lib', 'sbin']) if (!fs.existsSync(path.join(tmp, d))) fs.symlinkSync(`usr/${d}`, path.join(tmp, d));
    fs.writeFileSync(path.join(tmp, '.complete'), `${pinned}\n`); // last: a tree with it is whole
    fs.rmSync(sysroot, { recursive: true, force: true });
    fs.renameSync(tmp, sysroot);
    report(`built arm64 Node sysroot with nodejs ${versions.nodejs} in ${duration(Date.now() - started)}: ${sysroot}\n`);
    return result;
  } finally {
    release();
  }
}

/** Every package `nodejs` pulls in for arm64, with its version: apt's own resolution with nothing installed. */
async function resolve(aptDir: string, mirror: string): Promise<Record<string, string>> {
  fs.mkdirSync(path.join(aptDir, 'lists', 'partial'), { recursive: true });
  fs.mkdirSync(path.join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  fs.writeFileSync(path.join(aptDir, 'sources.list'), `deb [arch=arm64] ${mirror} ${SUITE} main\n`);
  fs.writeFileSync(path.join(aptDir, 'status'), '');
  const options = [
    '-o', `Dir::Etc::sourcelist=${path.join(aptDir, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(aptDir, 'lists')}`,
    '-o', `Dir::State::status=${path.join(aptDir, 'status')}`,
    '-o', `Dir::Cache=${path.join(aptDir, 'cache')}`,
    '-o', 'APT::Architecture=arm64',
    '-o', 'APT::Architectures=arm64',
    '-o', 'APT::Sandbox::User=root',
  ];
  await execFile('apt-get', [...options, '-qq', 'update'], { maxBuffer: 1 << 24 });
  const { stdout } = await execFile('apt-get', [...options, '-s', 'install', 'nodejs'], { maxBuffer: 1 << 24 });
  const versions: Record<string, string> = {};
  // Inst libc6 (2.41-12 Debian:13.2/stable [arm64])
  for (const m of stdout.matchAll(/^Inst (\S+) \((\S+)/gm)) versions[m[1]!] = m[2]!;
  if (!versions.nodejs) throw new Error(`apt found no nodejs for arm64 in ${mirror} ${SUITE}:\n${stdout}`);
  return versions;
}

function mmdebstrap(target: string, mirror: string, progress: (line: string) => void): Promise<void> {
  // extract: unpack nodejs and its dependencies, run no maintainer scripts (nothing arm64 runs).
  const args = ['--arch=arm64', '--variant=extract', '--include=nodejs', '--dpkgopt=path-exclude=/usr/share/doc/*', '--dpkgopt=path-exclude=/usr/share/man/*', SUITE, target, mirror];
  return runMmdebstrap(args, progress);
}
