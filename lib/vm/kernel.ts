import { execFile as execFileCb, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { debianMirror } from './apt-mirror';
import { lock } from './cache-lock';
import { PrivateApt } from './private-apt';
import { type Reporter, duration } from './progress';

const execFile = promisify(execFileCb);

/** A LUO-capable kernel image, built from Debian's kernel source. */
export interface BuiltKernel {
  /** The bzImage to boot (and to kexec into). */
  bzImage: string;
  /** The Debian package version it was built from, e.g. `7.3.4-1~bpo13+1`. */
  version: string;
  /** The unpacked, configured source tree (holds the kernel's LUO selftests); absent for LIVEUPDATE_KERNEL. */
  sourceDir?: string;
}

export interface KernelOptions {
  /** Where sources and builds are cached; see {@link cacheRoot}. */
  cacheDir?: string;
  report: Reporter;
  /** Parallel make jobs; cores + 1 by default. */
  jobs?: number;
}

// What the VM needs on top of x86_64_defconfig and the LUO selftests' own
// config fragments: the host's root over virtio-9p, and no modules (the
// guest has no module tree).
export const CONFIG_FRAGMENT = `CONFIG_PCI=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_MODULES=n
`;

// x86_64_defconfig brings virtio-blk and ext4 for the systemd VM's root disk;
// checked here so a defconfig that drops them fails loudly.
const REQUIRED = ['CONFIG_LIVEUPDATE', 'CONFIG_KEXEC_HANDOVER', 'CONFIG_KEXEC_FILE', 'CONFIG_MEMFD_CREATE', 'CONFIG_9P_FS', 'CONFIG_NET_9P_VIRTIO', 'CONFIG_VIRTIO_PCI', 'CONFIG_VIRTIO_BLK', 'CONFIG_EXT4_FS'];
const SELFTEST_FRAGMENTS = ['tools/testing/selftests/liveupdate/config', 'tools/testing/selftests/liveupdate/config.x86_64'];
// Bump when the way the kernel is built changes, so caches are rebuilt.
const RECIPE = 1;
// Roughly what an x86_64_defconfig build compiles; refined by the last build.
const DEFAULT_OBJECTS = 3000;
// A terminal line is rewritten in place; a CI log gets a line every 30 s.
const REPORT_EVERY_MS = process.stderr.isTTY ? 1000 : 30_000;
// Debian suites that carry linux-source-7.x for a bookworm host.
const SUITES = ['trixie-backports', 'sid'];

/** `$LIVEUPDATE_CACHE_DIR`, else `$XDG_CACHE_HOME/liveupdate`, else `~/.cache/liveupdate`. */
export function cacheRoot(): string {
  if (process.env.LIVEUPDATE_CACHE_DIR) return process.env.LIVEUPDATE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'liveupdate');
}

interface BuildMeta {
  version: string;
  objects: number;
  seconds: number;
}

/**
 * Returns a kernel with LUO enabled: `$LIVEUPDATE_KERNEL` when set, else the
 * cached build for Debian's newest `linux-source-7.x`, building it (with
 * progress) when the cache has none.
 */
export async function ensureKernel(options: KernelOptions): Promise<BuiltKernel> {
  const { report } = options;
  if (process.env.LIVEUPDATE_KERNEL) {
    return { bzImage: process.env.LIVEUPDATE_KERNEL, version: 'LIVEUPDATE_KERNEL' };
  }
  const cache = options.cacheDir ?? cacheRoot();
  const release = await lock(path.join(cache, 'kernel.lock'), 'the kernel', report);
  try {
    return await findOrBuild(cache, options);
  } finally {
    release();
  }
}

async function findOrBuild(cache: string, options: KernelOptions): Promise<BuiltKernel> {
  const { report } = options;
  const recipe = createHash('sha256').update(`${RECIPE}\n${CONFIG_FRAGMENT}`).digest('hex').slice(0, 12);

  let apt: PrivateApt;
  let pkg: { name: string; version: string };
  try {
    const mirror = debianMirror();
    report(`looking up the newest linux-source-7.x in Debian (${mirror})\n`);
    apt = new PrivateApt(path.join(cache, 'apt'), SUITES.map((s) => `deb ${mirror} ${s} main`));
    pkg = await newestKernelSource(apt);
  } catch (err) {
    const cached = newestCached(cache, recipe);
    if (!cached) throw err;
    report(`could not ask Debian (${(err as Error).message.split('\n')[0]}); using cached kernel ${cached.version}\n`);
    return cached;
  }

  const key = `${pkg.version}-${recipe}`.replace(/[^\w.+-]/g, '_');
  const outDir = path.join(cache, 'kernels', key);
  const sourceDir = path.join(cache, 'src', pkg.version.replace(/[^\w.+-]/g, '_'), pkg.name);
  const bzImage = path.join(outDir, 'bzImage');
  if (fs.existsSync(bzImage)) {
    report(`kernel ${pkg.version} (cached: ${bzImage})\n`);
    return { bzImage, version: pkg.version, sourceDir };
  }
  if (!fs.existsSync(path.join(sourceDir, UNPACKED))) {
    report(`downloading ${pkg.name} ${pkg.version}\n`);
    const deb = await apt.download(pkg.name, pkg.version);
    report(`unpacking ${path.basename(deb)}\n`);
    await unpackSource(deb, sourceDir);
    fs.rmSync(deb);
  }
  await build(sourceDir, pkg.version, outDir, bzImage, cache, options);
  for (const stale of staleSources(cache, sourceDir)) {
    try {
      fs.rmSync(stale, { recursive: true, force: true });
      report(`removed the source of an older kernel: ${stale}\n`);
    } catch (err) {
      // The kernel is built; a tree left behind costs only space.
      report(`could not remove ${stale}: ${(err as Error).message}\n`);
    }
  }
  return { bzImage, version: pkg.version, sourceDir };
}

/**
 * The unpacked sources under `cache/src` other than `sourceDir`'s version.
 * Each is about 2.7 GB once built, and only the newest is ever used again
 * (the selftests and incremental rebuilds build in it); older bzImages stay,
 * as the fallback when Debian cannot be reached.
 * @internal
 */
export function staleSources(cache: string, sourceDir: string): string[] {
  const root = path.join(cache, 'src');
  const keep = path.relative(root, sourceDir).split(path.sep)[0];
  if (!fs.existsSync(root) || !keep || keep.startsWith('..')) return [];
  // Only what unpackSource made: the cache directory may be shared
  // (LIVEUPDATE_CACHE_DIR), and anything else under src/ is not ours.
  const ours = (dir: string) =>
    fs.readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory() && /^linux-source-7\.\d+$/.test(e.name) && fs.existsSync(path.join(dir, e.name, UNPACKED)));
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== keep && ours(path.join(root, e.name)))
    .map((e) => path.join(root, e.name));
}

async function build(sourceDir: string, version: string, outDir: string, bzImage: string, cache: string, options: KernelOptions): Promise<void> {
  const { report } = options;

  report(`configuring ${path.basename(sourceDir)}\n`);
  await configure(sourceDir);

  const started = Date.now();
  const expected = lastObjectCount(cache) ?? DEFAULT_OBJECTS;
  const jobs = options.jobs ?? os.availableParallelism() + 1;
  const logPath = path.join(cache, 'kernel-build.log');
  const objects = await make(sourceDir, jobs, logPath, (done) => {
    const pct = Math.min(99, Math.floor((100 * done) / expected));
    report(`building kernel ${version}: ${pct}% (${done}/~${expected} objects, ${duration(Date.now() - started)}, log ${logPath})`);
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  report(`built kernel ${version} in ${duration(seconds * 1000)}\n`);

  fs.mkdirSync(outDir, { recursive: true });
  const meta: BuildMeta = { version, objects, seconds };
  fs.writeFileSync(path.join(outDir, 'build.json'), `${JSON.stringify(meta, null, 2)}\n`);
  fs.copyFileSync(path.join(sourceDir, 'arch/x86/boot/bzImage'), `${bzImage}.tmp`);
  fs.renameSync(`${bzImage}.tmp`, bzImage); // last: a bzImage in the cache is always complete
}

// Written once the source tree is fully unpacked; a tree without it is redone.
const UNPACKED = '.liveupdate-unpacked';

/** The newest `linux-source-7.N` in {@link SUITES} of the machine's Debian mirror. */
async function newestKernelSource(apt: PrivateApt): Promise<{ name: string; version: string }> {
  await apt.update();
  const names = (await apt.search('^linux-source-7\\.[0-9]+$')).filter((n) => /^linux-source-7\.\d+$/.test(n));
  if (names.length === 0) throw new Error(`no linux-source-7.x package in Debian ${SUITES.join(', ')}`);
  const minor = (n: string) => Number(n.split('.')[1]);
  const name = names.sort((a, b) => minor(b) - minor(a))[0]!;
  return { name, version: await apt.candidate(name) };
}

// Unpacks the package's linux-source-7.N.tar.xz so that its top directory
// becomes sourceDir, marking it complete only at the end.
async function unpackSource(deb: string, sourceDir: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-deb-'));
  try {
    await execFile('dpkg-deb', ['-x', deb, tmp]);
    const srcDir = path.join(tmp, 'usr/src');
    const tarball = fs.readdirSync(srcDir).find((f) => /^linux-source-.*\.tar\.xz$/.test(f));
    if (!tarball) throw new Error(`${deb} holds no linux-source tarball`);
    const parent = path.dirname(sourceDir);
    fs.rmSync(sourceDir, { recursive: true, force: true });
    fs.mkdirSync(parent, { recursive: true });
    await execFile('tar', ['-xJf', path.join(srcDir, tarball), '-C', parent]);
    if (!fs.existsSync(path.join(sourceDir, 'Makefile'))) throw new Error(`${tarball} did not unpack to ${sourceDir}`);
    fs.writeFileSync(path.join(sourceDir, UNPACKED), `${path.basename(deb)}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function configure(sourceDir: string): Promise<void> {
  const fragment = path.join(sourceDir, '.liveupdate-vm.config');
  fs.writeFileSync(fragment, CONFIG_FRAGMENT);
  await execFile('make', ['-C', sourceDir, 'x86_64_defconfig'], { maxBuffer: 1 << 24 });
  await execFile(path.join(sourceDir, 'scripts/kconfig/merge_config.sh'), ['-m', '.config', ...SELFTEST_FRAGMENTS, fragment], {
    cwd: sourceDir,
    maxBuffer: 1 << 24,
  });
  await execFile('make', ['-C', sourceDir, 'olddefconfig'], { maxBuffer: 1 << 24 });
  const config = fs.readFileSync(path.join(sourceDir, '.config'), 'utf8');
  const missing = REQUIRED.filter((opt) => !config.includes(`\n${opt}=y\n`));
  if (missing.length) throw new Error(`kernel config lacks ${missing.join(', ')} after olddefconfig (${sourceDir}/.config)`);
}

function make(sourceDir: string, jobs: number, logPath: string, progress: (objects: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const log = fs.createWriteStream(logPath);
    const child = spawn('make', ['-C', sourceDir, `-j${jobs}`, 'bzImage'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let objects = 0;
    let lastReport = 0;
    let tail: string[] = [];
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      const lines = chunk.toString().split('\n');
      tail = tail.concat(lines).slice(-40);
      objects += lines.filter((l) => /^\s+CC\s/.test(l)).length;
      if (Date.now() - lastReport > REPORT_EVERY_MS) {
        lastReport = Date.now();
        progress(objects);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      log.end();
      if (code === 0) resolve(objects);
      else reject(new Error(`kernel build failed (make exited ${code}); full log: ${logPath}\n${tail.join('\n')}`));
    });
  });
}

function lastObjectCount(cache: string): number | undefined {
  // Incremental rebuilds compile a handful of objects; only full builds say how many to expect.
  return cachedBuilds(cache).map((b) => b.meta.objects).find((n) => n > 1000);
}

function cachedBuilds(cache: string): Array<{ dir: string; meta: BuildMeta }> {
  const root = path.join(cache, 'kernels');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((dir) => path.join(root, dir))
    .filter((dir) => fs.existsSync(path.join(dir, 'bzImage')) && fs.existsSync(path.join(dir, 'build.json')))
    .map((dir) => ({ dir, meta: JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8')) as BuildMeta }))
    .sort((a, b) => fs.statSync(b.dir).mtimeMs - fs.statSync(a.dir).mtimeMs);
}

function newestCached(cache: string, recipe: string): BuiltKernel | undefined {
  const hit = cachedBuilds(cache).find((b) => b.dir.endsWith(`-${recipe}`));
  return hit && { bzImage: path.join(hit.dir, 'bzImage'), version: hit.meta.version };
}
