// The four prebuilds (linux-x64 and linux-arm64, glibc and musl; see
// scripts/prebuild.mjs): built once per source hash and cached, then each
// checked as far as this machine can:
// - every one: its ELF machine, its imports and exports (readelf);
// - glibc ones: no symbol newer than GLIBC_2.28;
// - linux-x64 glibc: loaded and exercised by the host's node;
// - linux-arm64 glibc: loaded and exercised by Debian's arm64 node under
//   qemu-aarch64 (the sysroot is cached, see arm64-node.ts);
// - musl ones: no musl Node can be had here (Debian packages none), so
//   only their imports are checked;
// - node-gyp-build picks the file of the right arch and libc, and never one
//   of the other libc.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { stderrReporter } from '../../lib/vm/progress';
import { type Arm64Node, ensureArm64Node } from './arm64-node';

const root = path.resolve(__dirname, '../..');
const TARGETS = [
  { arch: 'x64', libc: 'glibc', machine: 'Advanced Micro Devices X86-64' },
  { arch: 'arm64', libc: 'glibc', machine: 'AArch64' },
  { arch: 'x64', libc: 'musl', machine: 'Advanced Micro Devices X86-64' },
  { arch: 'arm64', libc: 'musl', machine: 'AArch64' },
] as const;
const GLIBC_FLOOR = [2, 28] as const;
// What a glibc prebuild may link: glibc itself, no libstdc++ or libgcc_s.
const GLIBC_LIBS = ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'ld-linux-x86-64.so.2', 'ld-linux-aarch64.so.1'];

let entry: string;
const file = (arch: string, libc: string) => path.join(entry, 'prebuilds', `linux-${arch}`, `liveupdate.${libc}.node`);
const readelf = (...args: string[]) => execFileSync('readelf', ['-W', ...args], { encoding: 'utf8' });
// The package, with node-gyp-build made to load from the prebuilds (as an installed package without a local build).
const forced = () => ({ ...process.env, LIVEUPDATE_PREBUILD: entry, PREBUILDS_ONLY: '1' });

beforeAll(() => {
  // Cached by source hash; cold, the four builds take about 13 minutes on 2 cores.
  const out = execFileSync(process.execPath, [path.join(root, 'scripts/prebuild.mjs'), '--no-install'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  entry = out.trim().split('\n').pop()!;
}, 30 * 60_000);

describe.each(TARGETS)('linux-$arch $libc', ({ arch, libc, machine }) => {
  test('is a stripped shared object for its machine that exports only the N-API entry points', () => {
    expect(readelf('-h', file(arch, libc))).toMatch(new RegExp(`Machine:\\s+${machine}`));
    const symbols = readelf('--dyn-syms', file(arch, libc)).split('\n');
    const exported = symbols.map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 8 && f[6] !== 'UND' && /GLOBAL|WEAK/.test(f[4]!)).map((f) => f[7]);
    expect(exported.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
    expect(readelf('-S', file(arch, libc))).not.toMatch(/\.symtab|\.debug_info/);
  });

  if (libc === 'glibc') {
    test('needs only glibc (no libstdc++) and no symbol newer than GLIBC_2.28', () => {
      const needed = [...readelf('-d', file(arch, libc)).matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]!);
      expect(needed.filter((l) => !GLIBC_LIBS.includes(l))).toEqual([]);
      const versioned = [...readelf('--dyn-syms', file(arch, libc)).matchAll(/\s(\w+)@GLIBC_(\d+)\.(\d+)/g)].map((m) => ({ symbol: m[1]!, major: Number(m[2]), minor: Number(m[3]) }));
      expect(versioned.length).toBeGreaterThan(0);
      const newer = versioned.filter((v) => v.major > GLIBC_FLOOR[0] || (v.major === GLIBC_FLOOR[0] && v.minor > GLIBC_FLOOR[1]));
      expect(newer.map((v) => `${v.symbol}@GLIBC_${v.major}.${v.minor}`)).toEqual([]);
    });
  } else {
    test('no musl runner here (Debian packages no musl Node): its imports are musl\'s only, with no GLIBC_ versions', () => {
      const dynamic = readelf('-d', file(arch, libc));
      const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.+)\]/g)].map((m) => m[1]!);
      expect(needed).toEqual(['libc.so']);
      const symbols = readelf('--dyn-syms', file(arch, libc));
      expect(symbols).not.toMatch(/@GLIBC|@GLIBCXX|@CXXABI|@GCC_/);
      expect(readelf('-V', file(arch, libc))).not.toMatch(/GLIBC/);
      // What it imports all comes from libc or Node itself (napi_*, uv_*).
      const imported = symbols.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[6] === 'UND' && f[7]).map((f) => f[7]!);
      expect(imported).toContain('memfd_create');
      expect(imported).toContain('napi_create_function');
    });
  }

  test(`node-gyp-build picks it on linux-${arch} ${libc}, and only there`, () => {
    const picked = (a: string, l: string) =>
      execFileSync(process.execPath, ['-p', `require('node-gyp-build').path(${JSON.stringify(root)})`], {
        cwd: root, encoding: 'utf8', env: { ...forced(), npm_config_arch: a, LIBC: l },
      }).trim();
    expect(picked(arch, libc)).toBe(file(arch, libc));
    expect(picked(arch, libc === 'glibc' ? 'musl' : 'glibc')).not.toBe(file(arch, libc));
  });
});

function smoke(command: readonly string[]) {
  const r = spawnSync(command[0]!, [...command.slice(1), path.join(__dirname, 'prebuild-smoke.cjs'), root], { cwd: root, encoding: 'utf8', env: forced(), timeout: 5 * 60_000 });
  expect(r.status, `${command.join(' ')} prebuild-smoke.cjs:\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function expectWorking(result: Record<string, unknown>) {
  expect(result).toMatchObject({
    seals: ['grow', 'seal', 'shrink'],
    resealed: 'EPERM',
    payload: 'here',
    content: 'carried',
    mapped: 'carried',
    unmappedLength: 0,
    receivedSeals: ['grow', 'seal', 'shrink'],
    sameFile: true,
    badFd: 'EBADF',
    badArgument: 'TypeError',
  });
}

test('linux-x64 glibc runs on this machine\'s node: a sealed memfd, sent over an FdSocket pair, errors from C++', () => {
  const result = smoke([process.execPath]);
  expect(result.arch).toBe('x64');
  expect(result.loaded).toBe(file('x64', 'glibc'));
  expectWorking(result);
});

describe('linux-arm64 glibc under qemu-aarch64', () => {
  let node: Arm64Node;
  beforeAll(async () => {
    node = await ensureArm64Node(stderrReporter('[prebuilds]'));
  }, 15 * 60_000);

  test('runs on Debian\'s arm64 node: a sealed memfd, sent over an FdSocket pair, errors from C++', () => {
    const result = smoke(node.command);
    expect(result.arch).toBe('arm64');
    expect(result.glibc).toMatch(/^2\.\d+$/);
    expect(result.loaded).toBe(file('arm64', 'glibc'));
    expectWorking(result);
  }, 5 * 60_000);
});
