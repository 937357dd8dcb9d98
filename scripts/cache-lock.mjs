// One builder at a time per cache entry (the same rule as lib/vm/cache-lock.ts,
// for scripts that run without the TypeScript build): `npm run prebuilds` may
// run twice at once (two test files, two checkouts sharing the cache).
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Takes `file` (holding our pid), waiting while a live process holds it; returns the release function. */
export async function lock(file, what, log) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let waited = 0; ; waited++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder;
    try {
      holder = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    if (holder !== '' && !alive(Number(holder))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (waited === 0) log(`waiting for process ${holder || '(starting)'}, which is building ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}
