import { scanOpenFds } from '../holder';
import { EXIT, type Io, parse } from './io';

export const sessionsHelp = `Usage: liveupdate sessions [--json]

Lists the LUO sessions processes hold right now, from /proc/*/fd: which
process, which fd, the session's full name. Holding a session fd is what
keeps its files preserved through a kexec.

Incoming sessions (handed over by the previous kernel) that nobody has
retrieved yet cannot be listed without retrieving them, which is permanent;
they show up here once a process retrieves them.

Options:
  --json      print a JSON array instead of text
  -h, --help  show this help
`;

export interface HeldSession {
  pid: number;
  command: string;
  fd: number;
  name: string;
}

// The kernel names each session file "[luo_session] NAME" (luo_session.c).
const PREFIX = 'anon_inode:[luo_session] ';

export function listSessions(procRoot: string): HeldSession[] {
  return scanOpenFds((target) => target.startsWith(PREFIX), procRoot).map(({ pid, command, fd, target }) => ({
    pid,
    command,
    fd,
    name: target.slice(PREFIX.length),
  }));
}

export async function sessions(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(sessionsHelp);
    return EXIT.ok;
  }
  const list = listSessions(io.procRoot);
  // /proc/PID/fd of other users' processes is unreadable: they are skipped, not absent.
  if (io.uid !== undefined && io.uid !== 0) {
    io.err(`liveupdate sessions: note: as uid ${io.uid} this shows only your own processes' sessions; run it as root to see all\n`);
  }
  if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
  else if (list.length === 0) io.out('no process holds a LUO session\n');
  else for (const s of list) io.out(`${String(s.pid).padStart(7)}  ${s.command.padEnd(15)} fd ${String(s.fd).padEnd(5)} ${s.name}\n`);
  return EXIT.ok;
}
