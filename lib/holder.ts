import * as fs from 'node:fs';
import * as path from 'node:path';

/** A process that has a file open. */
export interface FileHolder {
  pid: number;
  /** /proc/PID/comm */
  command: string;
}

/** One open fd of some process, whose /proc link matched. */
export interface OpenFd extends FileHolder {
  fd: number;
  /** What /proc/PID/fd/FD points at. */
  target: string;
}

/**
 * The open fds of every process whose /proc/PID/fd link satisfies `match`.
 * Processes we may not inspect are skipped, so the answer can be partial
 * without root.
 */
export function scanOpenFds(match: (target: string) => boolean, procRoot = '/proc'): OpenFd[] {
  const found: OpenFd[] = [];
  let pids: string[];
  try {
    pids = fs.readdirSync(procRoot).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return found;
  }
  for (const pid of pids) {
    const fdDir = path.join(procRoot, pid, 'fd');
    let fds: string[];
    try {
      fds = fs.readdirSync(fdDir);
    } catch {
      continue;
    }
    let command: string | undefined;
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(path.join(fdDir, fd));
      } catch {
        continue;
      }
      if (!match(target)) continue;
      command ??= readComm(procRoot, pid);
      found.push({ pid: Number(pid), command, fd: Number(fd), target });
    }
  }
  return found.sort((a, b) => a.pid - b.pid || a.fd - b.fd);
}

function readComm(procRoot: string, pid: string): string {
  try {
    return fs.readFileSync(path.join(procRoot, pid, 'comm'), 'utf8').trim();
  } catch {
    return '?'; // the process may have exited meanwhile; its pid is still worth naming
  }
}

/**
 * The processes that have `target` open, once each, by scanning
 * `/proc/PID/fd`: who holds `/dev/liveupdate` when opening it fails with
 * EBUSY. Without root only the caller's own processes can be seen, so the
 * answer may be empty although someone holds it.
 *
 * @param target the path as /proc shows it, e.g. `/dev/liveupdate`
 * @param procRoot where procfs is mounted (tests pass a fake tree)
 */
export function findHolders(target: string, procRoot = '/proc'): FileHolder[] {
  const holders = new Map<number, FileHolder>();
  for (const { pid, command } of scanOpenFds((t) => t === target, procRoot)) holders.set(pid, { pid, command });
  return [...holders.values()];
}
