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
  /** The memory map of this process (`/proc/self/maps`). */
  maps(): string;
  exists(file: string): boolean;
}

const realLookup = (): AddonLookup => ({
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  resolve: (root) => (require('node-gyp-build') as { resolve(dir: string): string }).resolve(root),
  env: process.env,
  maps: () => fs.readFileSync('/proc/self/maps', 'utf8'),
  exists: fs.existsSync,
});

/**
 * The addon file to load. node-gyp-build tells musl from glibc only by
 * `/etc/alpine-release` (or `LIBC=musl`), so on any other musl system it
 * picks the glibc prebuild, which then fails in the dynamic linker. The C
 * library this Node runs on decides instead: musl's dynamic linker is its C
 * library, mapped as `ld-musl-<arch>.so.1`.
 * @internal
 */
export function addonPath(root: string, lookup: AddonLookup = realLookup()): string {
  const found = lookup.resolve(root);
  const glibcPrebuild = /\.glibc\.node$/;
  if (lookup.env.LIBC || !glibcPrebuild.test(found) || !/\/ld-musl-[^/\n]*\.so/.test(lookup.maps())) return found;
  const musl = found.replace(glibcPrebuild, '.musl.node');
  return lookup.exists(musl) ? musl : found;
}
