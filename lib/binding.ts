import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Binding } from '../types/binding';

export type { Binding, MappingHandle } from '../types/binding';

let loaded: Binding | undefined;

/**
 * The compiled addon: the prebuild for this platform when the package ships
 * one, else the local node-gyp build. Loaded on first use, so code that is
 * handed a binding (tests, other runtimes) never needs the real one.
 * @internal
 */
export function defaultBinding(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require(addonPath(path.join(__dirname, '..'))) as Binding;
  return loaded;
}

/** What {@link addonPath} asks of the system; tests pass their own. */
export interface AddonLookup {
  /** node-gyp-build's choice for `root`. */
  resolve(root: string): string;
  env: NodeJS.ProcessEnv;
  /** The ELF interpreter (PT_INTERP) this Node was linked to run under, if any. */
  interpreter(): string | undefined;
  exists(file: string): boolean;
}

const realLookup = (): AddonLookup => ({
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  resolve: (root) => (require('node-gyp-build') as { resolve(dir: string): string }).resolve(root),
  env: process.env,
  interpreter: () => elfInterpreter('/proc/self/exe'),
  exists: fs.existsSync,
});

/**
 * The addon file to load. node-gyp-build tells musl from glibc only by
 * `/etc/alpine-release` (or `LIBC=musl`), so on any other musl system it
 * picks the glibc prebuild, which then fails in the dynamic linker. The C
 * library this Node was built for decides instead: its executable names
 * musl's dynamic linker, `/lib/ld-musl-<arch>.so.1`, as its interpreter.
 * (Not `/proc/self/maps`: it shows that linker under its real path, which
 * is `libc.so` wherever musl was installed by its own `make install`.)
 * Anything that cannot be read leaves node-gyp-build's choice.
 * @internal
 */
export function addonPath(root: string, lookup: AddonLookup = realLookup()): string {
  const found = lookup.resolve(root);
  const glibcPrebuild = /\.glibc\.node$/;
  if (lookup.env.LIBC || !glibcPrebuild.test(found)) return found;
  let interp: string | undefined;
  try {
    interp = lookup.interpreter();
  } catch {
    return found;
  }
  if (!interp || !/\/ld-musl-[^/]*\.so/.test(interp)) return found;
  const musl = found.replace(glibcPrebuild, '.musl.node');
  return lookup.exists(musl) ? musl : found;
}

const PT_INTERP = 3;

/**
 * The PT_INTERP string of a 64-bit little-endian ELF file (x64, arm64), or
 * undefined for a static executable or any other format.
 * @internal
 */
export function elfInterpreter(file: string): string | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const read = (length: number, position: number) => {
      const b = Buffer.alloc(length);
      return b.subarray(0, fs.readSync(fd, b, 0, length, position));
    };
    const h = read(64, 0);
    if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = read(phentsize * phnum, phoff);
    for (let at = 0; at + 40 <= ph.length; at += phentsize) {
      if (ph.readUInt32LE(at) !== PT_INTERP) continue;
      const path = read(Math.min(Number(ph.readBigUInt64LE(at + 32)), 4096), Number(ph.readBigUInt64LE(at + 8)));
      return path.toString('latin1').split('\0')[0];
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
