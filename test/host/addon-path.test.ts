// Which addon file loads: node-gyp-build's choice, except that a glibc
// prebuild is swapped for the musl one when this Node runs on musl (which
// node-gyp-build only knows on Alpine).
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { type AddonLookup, addonPath, elfInterpreter } from '../../lib/binding';

const root = '/pkg';
const glibc = '/pkg/prebuilds/linux-x64/liveupdate.glibc.node';
const musl = '/pkg/prebuilds/linux-x64/liveupdate.musl.node';
const glibcInterp = '/lib64/ld-linux-x86-64.so.2';
const muslInterp = '/lib/ld-musl-x86_64.so.1';

function lookup(over: Partial<AddonLookup>): AddonLookup {
  return { resolve: () => glibc, env: {}, interpreter: () => glibcInterp, exists: () => true, ...over };
}

describe('addonPath', () => {
  test('on glibc, node-gyp-build’s choice', () => {
    expect(addonPath(root, lookup({}))).toBe(glibc);
  });

  test('on musl outside Alpine, the musl prebuild instead of the glibc one', () => {
    expect(addonPath(root, lookup({ interpreter: () => muslInterp }))).toBe(musl);
  });

  test('LIBC set: node-gyp-build already honoured it', () => {
    expect(addonPath(root, lookup({ interpreter: () => muslInterp, env: { LIBC: 'glibc' } }))).toBe(glibc);
  });

  test('a local build is never swapped', () => {
    const local = '/pkg/build/Release/liveupdate.node';
    expect(addonPath(root, lookup({ resolve: () => local, interpreter: () => muslInterp }))).toBe(local);
  });

  test('no musl prebuild shipped: node-gyp-build’s choice stands', () => {
    expect(addonPath(root, lookup({ interpreter: () => muslInterp, exists: () => false }))).toBe(glibc);
  });

  test('a static Node (no interpreter) or one that cannot be read: node-gyp-build’s choice', () => {
    expect(addonPath(root, lookup({ interpreter: () => undefined }))).toBe(glibc);
    expect(addonPath(root, lookup({ interpreter: () => { throw new Error('no /proc'); } }))).toBe(glibc);
  });

  test('the interpreter is read from the ELF header: this Node’s is glibc’s, a script has none', () => {
    expect(elfInterpreter(process.execPath)).toMatch(/\/ld-linux-(x86-64|aarch64)\.so\.[12]$/);
    expect(elfInterpreter(__filename)).toBeUndefined();
  });

  test('this machine: the same file node-gyp-build picks', () => {
    const here = path.resolve(__dirname, '../..');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(addonPath(here)).toBe(require('node-gyp-build').resolve(here));
  });
});
