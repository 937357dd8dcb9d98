// `npm run prebuilds`: the addon for linux-x64 and linux-arm64, each for glibc
// and musl, cross-compiled with zig (see zig.mjs for why) into
//   prebuilds/linux-{x64,arm64}/liveupdate.{glibc,musl}.node
// named with prebuildify's libc tag, so node-gyp-build never picks a glibc
// binary on musl or a musl one on glibc.
//
// glibc targets link against glibc 2.28 (RHEL 8, Debian 10), so that is
// their floor. The four builds take about 13 minutes the first time on 2
// cores (zig compiles libc++ once per target) and are cached under
// ~/.cache/liveupdate/prebuilds/, keyed by a hash of everything that goes
// into them (native/, binding.gyp, the N-API headers, node-addon-api, zig,
// this script), so later runs only copy them.
//
// Each target builds in its own copy of the sources, never in ./build:
// node-gyp-build loads build/Release before any prebuild, and a cross-built
// binary there would break this checkout.
//
//   node scripts/prebuild.mjs [--out DIR | --no-install]   (default: this checkout)
// prints the cache directory holding prebuilds/ on stdout; --no-install
// only builds (or finds) them there.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './cache-dir.mjs';
import { lock } from './cache-lock.mjs';
import { ensureZig, ZIG_VERSION } from './zig.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[prebuild] ${m}\n`);

export const TARGETS = [
  { arch: 'x64', libc: 'glibc', zig: 'x86_64-linux-gnu.2.28' },
  { arch: 'arm64', libc: 'glibc', zig: 'aarch64-linux-gnu.2.28' },
  { arch: 'x64', libc: 'musl', zig: 'x86_64-linux-musl' },
  { arch: 'arm64', libc: 'musl', zig: 'aarch64-linux-musl' },
];

// What the build reads: our sources, this recipe, and the headers.
const SOURCES = ['binding.gyp', 'package.json', ...fs.readdirSync(path.join(root, 'native')).sort().map((f) => `native/${f}`)];
const RECIPE = ['scripts/prebuild.mjs', 'scripts/zig.mjs', 'scripts/addon.map'];

/** The N-API headers: from npm's configured nodedir, or beside this node (Debian, NodeSource, the official tarballs). */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const beside = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(beside, 'include/node/node_api.h')) ? beside : undefined; // else node-gyp downloads them
}

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found) throw new Error('node-gyp not found: run through npm (`npm run prebuilds`), which brings its own');
  return found;
}

function key(headers) {
  const hash = createHash('sha256');
  const add = (name, data) => hash.update(`${name}\0${data.length}\0`).update(data);
  for (const f of [...SOURCES, ...RECIPE]) add(f, fs.readFileSync(path.join(root, f)));
  const napi = path.dirname(require_('node-addon-api/package.json'));
  for (const f of fs.readdirSync(napi).filter((f) => /\.(h|gyp|json)$/.test(f)).sort()) add(`node-addon-api/${f}`, fs.readFileSync(path.join(napi, f)));
  if (headers) for (const f of ['node_api.h', 'js_native_api.h', 'js_native_api_types.h', 'node_api_types.h']) add(f, fs.readFileSync(path.join(headers, 'include/node', f)));
  add('zig', Buffer.from(ZIG_VERSION));
  add('targets', Buffer.from(JSON.stringify(TARGETS)));
  return hash.digest('hex').slice(0, 16);
}

function require_(id) {
  return fileURLToPath(import.meta.resolve(id));
}

/** Builds (or finds in the cache) the four prebuilds; returns the cache entry holding `prebuilds/`. */
export async function buildPrebuilds() {
  const headers = nodeDir();
  const entry = path.join(cacheDir(), 'prebuilds', key(headers));
  const done = () => TARGETS.every((t) => fs.existsSync(path.join(entry, 'prebuilds', `linux-${t.arch}`, `liveupdate.${t.libc}.node`)));
  if (done()) return entry;
  const release = await lock(`${entry}.lock`, 'the prebuilds', log);
  try {
    if (done()) return entry;
    const zig = await ensureZig(log);
    const work = `${entry}.tmp-${process.pid}`;
    fs.rmSync(work, { recursive: true, force: true });
    const started = Date.now();
    for (const t of TARGETS) {
      const t0 = Date.now();
      log(`linux-${t.arch} ${t.libc}: zig c++ -target ${t.zig} (the first build for a target also compiles libc++, a few minutes)`);
      buildOne(t, zig, headers, path.join(work, `src-${t.arch}-${t.libc}`), path.join(work, 'out'));
      log(`linux-${t.arch} ${t.libc}: done in ${Math.round((Date.now() - t0) / 1000)}s`);
    }
    fs.rmSync(entry, { recursive: true, force: true });
    fs.renameSync(path.join(work, 'out'), entry);
    fs.rmSync(work, { recursive: true, force: true });
    log(`all four built in ${Math.round((Date.now() - started) / 1000)}s, cached in ${entry}`);
    return entry;
  } finally {
    release();
  }
}

function buildOne(t, zig, headers, src, out) {
  fs.mkdirSync(path.join(src, 'toolchain'), { recursive: true });
  for (const f of SOURCES) {
    fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(src, f));
  }
  // gyp splits $(CC) on spaces but some tools want one word: small wrappers.
  const wrap = (name, cmd) => {
    fs.writeFileSync(path.join(src, 'toolchain', name), `#!/bin/sh\nexec '${zig}' ${cmd} "$@"\n`, { mode: 0o755 });
    return path.join(src, 'toolchain', name);
  };
  const env = {
    ...process.env,
    CC: wrap('cc', `cc -target ${t.zig}`),
    CXX: wrap('c++', `c++ -target ${t.zig}`),
    LINK: path.join(src, 'toolchain', 'c++'),
    AR: wrap('ar', 'ar'),
    // Stripped (host strip cannot read aarch64), exporting only the N-API entry points.
    // musl's CMSG_NXTHDR macro compares signed with unsigned (-Wsign-compare,
    // an error under binding.gyp's -Werror); glibc's does not.
    ...(t.libc === 'musl' ? { CXXFLAGS: '-Wno-sign-compare' } : {}),
    LDFLAGS: `-s -Wl,--version-script=${path.join(root, 'scripts/addon.map')}`,
    // binding.gyp asks `node -p "require('node-addon-api')"` from the copy.
    NODE_PATH: path.join(root, 'node_modules'),
    ...(headers ? { npm_config_nodedir: headers } : {}),
  };
  const args = [
    require_('prebuildify/bin.js'), '--napi', '--target', `node@${process.versions.node}`, '--node-gyp', nodeGyp(),
    '--arch', t.arch, '--libc', t.libc, '--tag-libc', '--out', out, '--cwd', src,
  ];
  try {
    execFileSync(process.execPath, args, { cwd: src, env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
  } catch (err) {
    throw new Error(`prebuild for linux-${t.arch} ${t.libc} failed:\n${String(err.stdout ?? '').slice(-4000)}\n${String(err.stderr ?? '').slice(-4000)}`);
  }
}

/** Replaces `dir`/prebuilds/linux-{x64,arm64} with the cache entry's. */
export function install(entry, dir) {
  for (const arch of new Set(TARGETS.map((t) => t.arch))) {
    const to = path.join(dir, 'prebuilds', `linux-${arch}`);
    const tmp = `${to}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(path.join(entry, 'prebuilds', `linux-${arch}`), tmp, { recursive: true });
    fs.rmSync(to, { recursive: true, force: true }); // also drops an untagged liveupdate.node of older builds
    fs.renameSync(tmp, to);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = i > 0 ? path.resolve(process.argv[i + 1]) : root;
  const entry = await buildPrebuilds();
  if (!process.argv.includes('--no-install')) {
    install(entry, out);
    log(`prebuilds/linux-{x64,arm64}/liveupdate.{glibc,musl}.node in ${out}`);
  }
  process.stdout.write(`${entry}\n`);
}
