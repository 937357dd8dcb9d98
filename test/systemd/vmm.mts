// vmm.service's program. systemd hands it the LUO session "guest-ram"
// (LUOSession=guest-ram). On a fresh boot the session is outgoing: put 64 MiB
// of guest RAM in a memfd, preserve it under token 1, then tell systemd
// READY=1, so nothing can start the kexec before the RAM is in the session.
// After `systemctl kexec` the session is incoming: take the RAM back, check
// it, FINISH the session, READY=1.
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Memfd, Session } from 'liveupdate';
import { RESULTS, type SystemdRecord, type VmmRecord, kexecCount, mark, record } from './record.mjs';

const FDNAME = 'guest-ram';
const TOKEN = 1n;
const RAM_BYTES = 64 << 20;
const SD_LISTEN_FDS_START = 3;

const listen = { pid: process.env.LISTEN_PID, fds: process.env.LISTEN_FDS, fdnames: process.env.LISTEN_FDNAMES };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
// Until liveupdate/systemd has notify(): systemd-notify, allowed by NotifyAccess=all.
const notifyReady = () => execFileSync('systemd-notify', ['--ready']);
let boot = NaN;
// Where the time goes under emulation: ms since the process started, per step.
const times: Record<string, number> = { loaded: Math.round(performance.now()) };
const step = (name: string) => (times[name] = Math.round(performance.now()));

try {
  boot = kexecCount().count + 1;
  const index = (listen.fdnames ?? '').split(':').indexOf(FDNAME);
  if (index < 0 || String(process.pid) !== listen.pid) throw new Error(`systemd passed no fd named ${FDNAME}: ${JSON.stringify(listen)}`);
  const fd = SD_LISTEN_FDS_START + index;
  step('KExecCount read');
  const session = new Session(fd); // reads the name and direction from the kernel
  const about = { fd, name: session.name, direction: session.direction };
  if (session.direction === 'outgoing') {
    const ram = Memfd.createSync('guest-ram', { size: RAM_BYTES });
    const content = randomFillSync(Buffer.alloc(RAM_BYTES));
    fs.writeSync(ram.fd, content, 0, RAM_BYTES, 0);
    step('filled');
    await session.preserve(ram, TOKEN);
    step('preserved');
    const hash = sha256(content);
    step('hashed');
    notifyReady();
    step('ready');
    record({ unit: 'vmm.service', boot, ok: true, listen, session: about, sha256: hash, bytes: RAM_BYTES, times });
    mark(`vmm ready: ${RAM_BYTES} bytes of guest RAM preserved in session ${session.name}`);
  } else {
    const ram = Memfd.from(await session.retrieve(TOKEN));
    step('retrieved');
    const bytes = fs.fstatSync(ram.fd).size;
    const content = Buffer.alloc(bytes);
    fs.readSync(ram.fd, content, 0, bytes, 0);
    step('read');
    await session.finish();
    step('finished');
    const before = readRecords().findLast((r): r is VmmRecord => r.unit === 'vmm.service' && r.session?.direction === 'outgoing');
    const back = sha256(content);
    const ok = back === before?.sha256;
    step('hashed');
    notifyReady();
    step('ready');
    record({ unit: 'vmm.service', boot, ok, listen, session: about, sha256: back, bytes, expectedSha256: before?.sha256, finished: true, times });
    mark(`vmm back with its data: ${bytes} bytes, SHA-256 ${ok ? 'matches' : 'DIFFERS'}`);
  }
  // Runs on like a VMM; the memfd and session stay open until systemd stops it.
  setInterval(() => {}, 1 << 30);
} catch (err) {
  record({ unit: 'vmm.service', boot, ok: false, error: (err as Error).stack ?? String(err), listen });
  mark(`vmm failed: ${(err as Error).message}`);
  process.exit(1);
}

function readRecords(): SystemdRecord[] {
  return fs.readFileSync(RESULTS, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SystemdRecord);
}
