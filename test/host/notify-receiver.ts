// A stand-in for the service manager's notify socket, in another process:
// python3 binds an AF_UNIX SOCK_DGRAM socket with SO_PASSCRED and reports
// each datagram as it arrived (bytes, SCM_CREDENTIALS, the SCM_RIGHTS fds:
// what each is and its first bytes) as one JSON line. `close` closes each
// received fd at once (as systemd does with a BARRIER=1 pipe); `hold`
// keeps them until the receiver is closed.
import { type ChildProcess, spawn } from 'node:child_process';
import * as readline from 'node:readline';

const SCRIPT = String.raw`
import json, os, socket, struct, sys
address, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\0' + address[1:] if address.startswith('@') else address)
print(json.dumps({'ready': True}), flush=True)
held = []
while True:
    data, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(253 * 4) + socket.CMSG_SPACE(12))
    fds, creds = [], None
    for level, kind, body in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack('%di' % (len(body) // 4), body[: len(body) - len(body) % 4]))
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack('3i', body)
            creds = {'pid': pid, 'uid': uid, 'gid': gid}
    files = []
    for fd in fds:
        target = os.readlink('/proc/self/fd/%d' % fd)
        try:
            content = os.pread(fd, 64, 0).decode('utf8', 'replace')
        except OSError:
            content = None
        files.append({'target': target, 'content': content})
        if mode == 'close':
            os.close(fd)
        else:
            held.append(fd)
    print(json.dumps({'payload': data.decode('utf8', 'replace'), 'creds': creds, 'fds': files, 'flags': flags}), flush=True)
`;

export interface Received {
  payload: string;
  creds: { pid: number; uid: number; gid: number } | null;
  fds: Array<{ target: string; content: string | null }>;
  flags: number;
}

export interface Receiver {
  /** The next datagram, in order. */
  next(): Promise<Received>;
  close(): void;
}

export async function startReceiver(address: string, mode: 'close' | 'hold' = 'close'): Promise<Receiver> {
  const child: ChildProcess = spawn('python3', ['-c', SCRIPT, address, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const queue: Received[] = [];
  const waiting: Array<(r: Received) => void> = [];
  let ready!: () => void;
  let failed!: (err: Error) => void;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  child.once('error', failed);
  child.once('exit', (code) => failed(new Error(`receiver exited (${code}) before it was ready`)));
  lines.on('line', (line) => {
    const message = JSON.parse(line);
    if (message.ready) return ready();
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  await started;
  return {
    next: () => {
      const got = queue.shift();
      return got ? Promise.resolve(got) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => {
      child.kill();
    },
  };
}
