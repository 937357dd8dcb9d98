// The kernel cache keeps one unpacked source tree: each is ~2.7 GB built,
// and only the newest version's is built in again.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { staleSources } from '../../lib/vm/kernel';

test('after a build, every other version of the source is stale, the one built from is kept', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-cache-'));
  try {
    for (const v of ['7.2.9-1', '7.3.4-1_bpo13+1', '7.3.5-1']) fs.mkdirSync(path.join(cache, 'src', v, 'linux-source-7.3'), { recursive: true });
    const built = path.join(cache, 'src', '7.3.5-1', 'linux-source-7.3');
    expect(staleSources(cache, built).sort()).toEqual([path.join(cache, 'src', '7.2.9-1'), path.join(cache, 'src', '7.3.4-1_bpo13+1')]);
  } finally {
    fs.rmSync(cache, { recursive: true });
  }
});

test('nothing is stale in a cache without sources, or for a source outside the cache', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-cache-'));
  try {
    expect(staleSources(cache, path.join(cache, 'src', '7.3.5-1', 'linux-source-7.3'))).toEqual([]);
    fs.mkdirSync(path.join(cache, 'src', '7.3.5-1'), { recursive: true });
    expect(staleSources(cache, '/elsewhere/linux-source-7.3')).toEqual([]);
  } finally {
    fs.rmSync(cache, { recursive: true });
  }
});
