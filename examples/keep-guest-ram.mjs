// A VMM keeps its guest RAM (a memfd) across a live update of the host
// kernel: stage 1 before the kexec, stage 2 in the new kernel. The README
// shows this file; the VM tier of `npm test` runs it on a real LUO kernel.
import * as fs from 'node:fs';
import { LiveUpdate, Memfd } from 'liveupdate';
import { liveUpdateToNextStage, vmStage } from 'liveupdate/vm';

const SESSION = 'vmm-guest-ram';
const TOKEN = 1n;
const STATE = Buffer.from('guest state written before the update');

if (vmStage() === 1) {
  const ram = Memfd.createSync('guest-ram', { size: 64 << 20 });
  fs.writeSync(ram.fd, STATE, 0, STATE.length, 0);
  const session = LiveUpdate.openSync().createSessionSync(SESSION);
  session.preserveSync(ram, TOKEN);
  liveUpdateToNextStage(); // kexec while `session` is open: its files are kept
} else {
  const session = LiveUpdate.openSync().retrieveSessionSync(SESSION);
  const ram = Memfd.from(session.retrieveSync(TOKEN));
  const back = Buffer.alloc(STATE.length);
  fs.readSync(ram.fd, back, 0, back.length, 0);
  console.log(`guest RAM is back: "${back}"`);
  session.finishSync();
}
