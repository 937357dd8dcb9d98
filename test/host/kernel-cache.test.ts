// The kernel cache keeps one unpacked source tree: each is ~2.7 GB built,
// and only the newest version's is built in again. Only trees the library
// unpacked are ever removed: the cache directory may be shared.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { staleSources } from '../../lib/vm/kernel';

let cache: string;
beforeEach(() => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-cache-'));
});
afterEach(() => fs.rmSync(cache, { recursive: true }));

// A tree as unpackSource leaves it: src/VERSION/linux-source-7.N with its marker.
function unpacked(version: string, name = 'linux-source-7.3', marked = true): string {
  const dir = path.join(cache, 'src', version, name);
  fs.mkdirSync(dir, { recursive: true });
  if (marked) fs.writeFileSync(path.join(dir, '.liveupdate-unpacked'), 'x.deb\n');
  return dir;
}

test('after a build, the other versions the library unpacked are stale; the one built from is kept', () => {
  unpacked('7.2.9-1', 'linux-source-7.2');
  unpacked('7.3.4-1_bpo13+1');
  const built = unpacked('7.3.5-1');
  expect(staleSources(cache, built).sort()).toEqual([path.join(cache, 'src', '7.2.9-1'), path.join(cache, 'src', '7.3.4-1_bpo13+1')]);
});

test('what the library did not unpack is never stale: other directories, files, a tree without its marker', () => {
  const built = unpacked('7.3.5-1');
  fs.mkdirSync(path.join(cache, 'src', 'my-project', 'lib'), { recursive: true });
  fs.writeFileSync(path.join(cache, 'src', 'notes.txt'), '');
  unpacked('7.3.4-1', 'linux-source-7.3', false);
  unpacked('6.12.1-1', 'linux-source-6.12');
  expect(staleSources(cache, built)).toEqual([]);
});

test('nothing is stale in a cache without sources, for a source outside the cache, or for src/ itself', () => {
  expect(staleSources(cache, path.join(cache, 'src', '7.3.5-1', 'linux-source-7.3'))).toEqual([]);
  unpacked('7.2.9-1', 'linux-source-7.2');
  expect(staleSources(cache, '/elsewhere/linux-source-7.3')).toEqual([]);
  expect(staleSources(cache, path.join(cache, 'src'))).toEqual([]);
});
