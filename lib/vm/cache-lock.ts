// One builder at a time per cache entry: concurrent test runs (and other
// checkouts) share ~/.cache/liveupdate, and a half-built kernel or root
// filesystem must never be taken for a finished one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Reporter } from './progress';

/**
 * Takes the lock file `file` (holding our pid), waiting while a live process
 * holds it; a lock left by a process that no longer exists is taken over.
 * `what` names the thing being built, for the waiting message. Returns the
 * release function.
 */
export async function lock(file: string, what: string, report: Reporter): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let waited = 0; ; waited++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    // An empty file is a holder between creating it and writing its pid.
    if (text !== '' && !alive(Number(text))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (waited === 0) report(`waiting for process ${text || '(starting)'}, which is building ${what} in this cache\n`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
