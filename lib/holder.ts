import * as fs from 'node:fs';
import * as path from 'node:path';

/** A process that has a file open. */
export interface FileHolder {
  pid: number;
  /** /proc/PID/comm */
  command: string;
}

/**
 * Finds the processes that have `target` open, from /proc/PID/fd links.
 * Processes we may not inspect are skipped, so the answer can be empty
 * without root.
 */
export function findHolders(target: string, procRoot = '/proc'): FileHolder[] {
  const holders: FileHolder[] = [];
  let pids: string[];
  try {
    pids = fs.readdirSync(procRoot).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return holders;
  }
  for (const pid of pids) {
    const fdDir = path.join(procRoot, pid, 'fd');
    let fds: string[];
    try {
      fds = fs.readdirSync(fdDir);
    } catch {
      continue;
    }
    const holds = fds.some((fd) => {
      try {
        return fs.readlinkSync(path.join(fdDir, fd)) === target;
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let command = '?';
    try {
      command = fs.readFileSync(path.join(procRoot, pid, 'comm'), 'utf8').trim();
    } catch {
      // The process may have exited meanwhile; its pid is still worth naming.
    }
    holders.push({ pid: Number(pid), command });
  }
  return holders;
}
