// The API reference (`npm run docs`) builds from the TSDoc without a
// warning: a broken {@link} or an undocumented export fails here, not
// later for a reader.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { expect, test } from 'vitest';

test('typedoc reads every entry point without a warning', () => {
  const root = path.resolve(__dirname, '../..');
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typedoc/bin/typedoc'), '--emit', 'none'], { cwd: root, encoding: 'utf8', timeout: 170_000 });
  expect(`${r.stdout}${r.stderr}`).not.toMatch(/\[warning\]|\[error\]/);
  expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
}, 180_000);
