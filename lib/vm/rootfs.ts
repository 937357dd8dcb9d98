// A Debian sid root filesystem with systemd as init, built once with
// mmdebstrap and cached: the userspace of the systemd VM tier. Sid because
// it carries systemd 262 (LUOSession=, the fd store across kexec); the
// host's bookworm does not. Node is not installed: the guest runs the
// host's own node over a read-only 9p mount of / (the binary that built
// this checkout's addon), which keeps the image small and quick to build.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { debianMirror } from './apt-mirror';
import { lock } from './cache-lock';
import { cacheRoot } from './kernel';
import { PrivateApt } from './private-apt';
import { type Reporter, duration } from './progress';

/** The packages on top of `minbase`; their versions make the cache key. */
export const ROOTFS_PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'dbus', 'kexec-tools'] as const;
const SUITE = 'sid';
// Bump when the way the root filesystem is built changes, so caches are rebuilt.
const RECIPE = 1;
// Documentation and translations only make the per-run image slower to write.
const EXCLUDES = ['/usr/share/man/*', '/usr/share/doc/*', '/usr/share/info/*', '/usr/share/locale/*'];

/** A cached root filesystem tree. */
export interface Rootfs {
  /** The tree; owned by root, never to be written to (images are made from copies). */
  dir: string;
  /** The versions of {@link ROOTFS_PACKAGES} it was built from. */
  versions: Record<string, string>;
}

export interface RootfsOptions {
  report: Reporter;
  /** Where builds are cached; see {@link cacheRoot}. */
  cacheDir?: string;
  /** The Debian archive to build from; the machine's own by default ({@link debianMirror}). */
  mirror?: string;
}

interface RootfsMeta {
  recipe: number;
  versions: Record<string, string>;
  seconds: number;
}

/**
 * Returns a Debian sid `minbase` tree with {@link ROOTFS_PACKAGES}, building
 * it with mmdebstrap (with progress) when the cache has none for today's
 * versions of those packages. Without network, the newest cached tree of
 * this recipe is used.
 */
export async function ensureRootfs(options: RootfsOptions): Promise<Rootfs> {
  const cache = options.cacheDir ?? cacheRoot();
  const release = await lock(path.join(cache, 'rootfs.lock'), 'the root filesystem', options.report);
  try {
    return await findOrBuild(path.join(cache, 'rootfs'), path.join(cache, `apt-${SUITE}`), options);
  } finally {
    release();
  }
}

async function findOrBuild(root: string, aptDir: string, options: RootfsOptions): Promise<Rootfs> {
  const { report } = options;
  let mirror: string;
  let versions: Record<string, string>;
  try {
    mirror = options.mirror ?? debianMirror();
    report(`looking up ${ROOTFS_PACKAGES.join(', ')} in Debian ${SUITE} (${mirror})\n`);
    const apt = new PrivateApt(aptDir, [`deb ${mirror} ${SUITE} main`]);
    await apt.update();
    versions = {};
    for (const pkg of ROOTFS_PACKAGES) versions[pkg] = await apt.candidate(pkg);
  } catch (err) {
    const cached = newestCached(root);
    if (!cached) throw err;
    report(`could not ask Debian (${(err as Error).message.split('\n')[0]}); using cached root filesystem ${cached.dir}\n`);
    return cached;
  }

  const dir = path.join(root, cacheKey(versions));
  if (fs.existsSync(metaFile(dir))) {
    report(`root filesystem with systemd ${versions.systemd} (cached: ${dir})\n`);
    return { dir, versions };
  }
  const started = Date.now();
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  await mmdebstrap(tmp, mirror, (line) => report(`building root filesystem (systemd ${versions.systemd}, ${duration(Date.now() - started)}): ${line}`));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  const seconds = Math.round((Date.now() - started) / 1000);
  const meta: RootfsMeta = { recipe: RECIPE, versions, seconds };
  fs.writeFileSync(metaFile(dir), `${JSON.stringify(meta, null, 2)}\n`); // last: a tree with its meta is complete
  report(`built root filesystem with systemd ${versions.systemd} in ${duration(seconds * 1000)}: ${dir}\n`);
  return { dir, versions };
}

/** `sid-systemd-262.1-1-<hash of recipe and all versions>`: readable, and new for any new package. */
export function cacheKey(versions: Record<string, string>, recipe = RECIPE): string {
  const pinned = Object.keys(versions).sort().map((p) => `${p}=${versions[p]}`).join('\n');
  const hash = createHash('sha256').update(`${recipe}\n${pinned}`).digest('hex').slice(0, 12);
  return `${SUITE}-systemd-${versions.systemd ?? 'none'}-${hash}`.replace(/[^\w.+-]/g, '_');
}

// Beside the tree, not in it: everything in the tree goes into the images.
const metaFile = (dir: string) => `${dir}.json`;

function mmdebstrap(target: string, mirror: string, progress: (line: string) => void): Promise<void> {
  const args = [
    '--variant=minbase',
    `--include=${ROOTFS_PACKAGES.join(',')}`,
    // sid's Release file can be past its Valid-Until date for a while.
    '--aptopt=Acquire::Check-Valid-Until "false"',
    ...EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    SUITE,
    target,
    mirror,
  ];
  return runMmdebstrap(args, progress);
}

/**
 * Runs mmdebstrap with `args`, passing its "I: …" phase lines (downloading,
 * extracting, installing…) to `progress`; a failure carries its last 40
 * lines of output.
 * @internal
 */
export function runMmdebstrap(args: string[], progress: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mmdebstrap', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail: string[] = [];
    const onData = (chunk: Buffer) => {
      const lines = chunk.toString().split('\n').filter(Boolean);
      tail = tail.concat(lines).slice(-40);
      for (const line of lines) if (line.startsWith('I: ')) progress(line.slice(3));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`mmdebstrap ${args.join(' ')} exited ${code}:\n${tail.join('\n')}`));
    });
  });
}

function newestCached(root: string): Rootfs | undefined {
  if (!fs.existsSync(root)) return undefined;
  return fs
    .readdirSync(root)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ dir: path.join(root, f.slice(0, -'.json'.length)), meta: JSON.parse(fs.readFileSync(path.join(root, f), 'utf8')) as RootfsMeta }))
    .filter((c) => c.meta.recipe === RECIPE && fs.existsSync(c.dir))
    .sort((a, b) => fs.statSync(metaFile(b.dir)).mtimeMs - fs.statSync(metaFile(a.dir)).mtimeMs)
    .map((c) => ({ dir: c.dir, versions: c.meta.versions }))[0];
}
