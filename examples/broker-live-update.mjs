// The broker example end to end, for `liveupdate vm run`: a broker, a VMM
// of another uid that keeps its guest RAM through it, and a live update the
// broker orchestrates.   npx liveupdate vm run examples/broker-live-update.mjs
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LiveUpdateBroker, LiveUpdateClient } from 'liveupdate';
import { nextStageCmdline, vmStage } from 'liveupdate/vm';

const SOCKET = '/run/luod/broker.sock';
// The VMM runs as uid 1000 when it can read this checkout (every directory
// up to here world-searchable), else as root, which works the same.
const readableByAll = (dir) => dir === '/' || ((fs.statSync(dir).mode & 0o005) === 0o005 && readableByAll(path.dirname(dir)));
const VMM_UID = readableByAll(path.dirname(new URL(import.meta.url).pathname)) ? 1000 : 0;
const broker = LiveUpdateBroker.start({ socketPath: SOCKET, mode: 0o666, allowUids: [VMM_UID], barrierTimeoutMs: 5000, log: (l) => console.log(`luod: ${l}`) });

// The VMM runs as uid 1000 and only needs to read this example.
const vmm = spawn(process.execPath, [new URL('vmm-with-broker.mjs', import.meta.url).pathname, SOCKET], {
  uid: VMM_UID,
  gid: VMM_UID,
  cwd: '/',
  stdio: ['ignore', 'pipe', 'inherit'],
});
const said = (text) =>
  new Promise((resolve) => vmm.stdout.on('data', (d) => String(d).includes(text) && resolve()));
vmm.stdout.pipe(process.stdout);

if (vmStage() === 1) {
  await said('running');
  const admin = LiveUpdateClient.connect(SOCKET);
  console.log('admin: asking the broker for a live update');
  await admin.requestKexec({ kernel: process.env.LIVEUPDATE_VM_KERNEL, cmdline: nextStageCmdline(2) });
  await new Promise(() => {}); // the broker reboots into stage 2
} else {
  await new Promise((resolve) => vmm.once('exit', resolve));
  broker.close();
  fs.rmSync('/run/luod', { recursive: true, force: true });
}
