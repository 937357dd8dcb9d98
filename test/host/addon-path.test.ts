// Which addon file loads: node-gyp-build's choice, except that a glibc
// prebuild is swapped for the musl one when this Node runs on musl (which
// node-gyp-build only knows on Alpine).
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { type AddonLookup, addonPath } from '../../lib/binding';

const root = '/pkg';
const glibc = '/pkg/prebuilds/linux-x64/liveupdate.glibc.node';
const musl = '/pkg/prebuilds/linux-x64/liveupdate.musl.node';
const glibcMaps = '7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n';
const muslMaps = '7f00-7f01 r-xp 00000000 08:01 1 /lib/ld-musl-x86_64.so.1\n';

function lookup(over: Partial<AddonLookup>): AddonLookup {
  return { resolve: () => glibc, env: {}, maps: () => glibcMaps, exists: () => true, ...over };
}

describe('addonPath', () => {
  test('on glibc, node-gyp-build’s choice', () => {
    expect(addonPath(root, lookup({}))).toBe(glibc);
  });

  test('on musl outside Alpine, the musl prebuild instead of the glibc one', () => {
    expect(addonPath(root, lookup({ maps: () => muslMaps }))).toBe(musl);
  });

  test('LIBC set: node-gyp-build already honoured it', () => {
    expect(addonPath(root, lookup({ maps: () => muslMaps, env: { LIBC: 'glibc' } }))).toBe(glibc);
  });

  test('a local build is never swapped', () => {
    const local = '/pkg/build/Release/liveupdate.node';
    expect(addonPath(root, lookup({ resolve: () => local, maps: () => muslMaps }))).toBe(local);
  });

  test('no musl prebuild shipped: node-gyp-build’s choice stands', () => {
    expect(addonPath(root, lookup({ maps: () => muslMaps, exists: () => false }))).toBe(glibc);
  });

  test('this machine: the same file node-gyp-build picks', () => {
    const here = path.resolve(__dirname, '../..');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(addonPath(here)).toBe(require('node-gyp-build').resolve(here));
  });
});
