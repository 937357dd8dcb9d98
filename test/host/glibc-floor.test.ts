// The prebuilt addon must load on glibc 2.28 (RHEL 8, Debian 10): no symbol
// it imports may carry a newer GLIBC_ version than that.
import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';
import * as path from 'node:path';

const FLOOR = [2, 28];

test('the addon imports no glibc symbol newer than 2.28', () => {
  // The file the package loads: a local build or the prebuild.
  const addon = (require('node-gyp-build') as { path(dir: string): string }).path(path.resolve(__dirname, '../..'));
  const r = spawnSync('objdump', ['-T', addon], { encoding: 'utf8' });
  expect(r.error, 'objdump (binutils) is needed to read the addon\'s imports').toBeUndefined();
  const versions = [...r.stdout.matchAll(/\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)\s+(\S+)/g)].map((m) => ({ version: [Number(m[1]), Number(m[2])], symbol: m[3]! }));
  expect(versions.length).toBeGreaterThan(0);
  const newer = versions.filter(({ version: [major, minor] }) => major! > FLOOR[0]! || (major === FLOOR[0] && minor! > FLOOR[1]!));
  expect(newer.map((v) => `${v.symbol}@GLIBC_${v.version.join('.')}`)).toEqual([]);
});
