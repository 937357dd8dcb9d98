// The service of vmm.service: guest RAM in a memfd, preserved in the
// session systemd made for it (LUOSession=guest-ram). Every boot it gets
// that session from LISTEN_FDS: outgoing on a fresh boot (fill RAM,
// preserve it), incoming after a live update (take RAM back, check it,
// finish, and renew the session so the next live update keeps it too).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Memfd } from 'liveupdate';
import { listenFds, notify, renewLuoSession } from 'liveupdate/systemd';

const NAME = 'guest-ram';
const TOKEN = 1;
const size = Number(process.env.GUEST_RAM_BYTES ?? 64 << 20);
const sha256 = (fd) => createHash('sha256').update(fs.readFileSync(`/proc/self/fd/${fd}`)).digest('hex');

const entry = listenFds().find((f) => f.name === NAME && f.kind === 'session');
if (!entry) {
  console.error(`vmm: no session "${NAME}" in LISTEN_FDS: run me under systemd 262+ with LUOSession=${NAME}`);
  process.exit(1);
}
let session = entry.file;
console.log(`vmm: session ${session.name} (${session.direction}) from LISTEN_FDS as "${NAME}"`);
let ram;
if (session.direction === 'incoming') {
  ram = Memfd.from(await session.retrieve(TOKEN));
  await session.finish();
  console.log(`vmm: guest RAM back from session ${session.name}: ${fs.fstatSync(ram.fd).size} bytes, sha256 ${sha256(ram.fd)}; session finished`);
  session = await renewLuoSession(session, NAME); // a fresh outgoing session for the next one
} else {
  ram = Memfd.createSync(NAME, { size });
  const page = Buffer.alloc(4096);
  for (let off = 0; off < size; off += page.length) {
    page.writeUInt32LE(off / page.length, 0); // something to check after the live update
    fs.writeSync(ram.fd, page, 0, page.length, off);
  }
  console.log(`vmm: guest RAM filled: ${size} bytes, sha256 ${sha256(ram.fd)}`);
}
await session.preserve(ram, TOKEN);
console.log(`vmm: guest RAM preserved in session ${session.name} (${session.direction}) under token ${TOKEN}`);
await notify({ READY: 1, STATUS: `guest RAM preserved in ${session.name}` });
// A real VMM runs its guest here. The session stays in systemd's fd store,
// so `systemctl kexec` may stop this process at any time.
setInterval(() => {}, 1 << 30);
