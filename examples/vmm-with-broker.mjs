// A VMM that keeps its guest RAM across a live update through the broker
// (`liveupdate daemon`), without access to /dev/liveupdate itself.
//   node examples/vmm-with-broker.mjs SOCKET
// Before the update it creates its session and preserves the RAM memfd; the
// broker's prepare call is where a real VMM would pause its vCPUs. After the
// update (a new VMM process) it gets the same RAM back.
import * as fs from 'node:fs';
import { LiveUpdateClient, Memfd } from 'liveupdate';

const client = LiveUpdateClient.connect(process.argv[2]);
const known = await client.listSessions();

if (!known.some((s) => s.name === 'guest-ram' && s.state === 'incoming')) {
  const ram = Memfd.createSync('guest-ram', { size: 16 << 20 });
  fs.writeSync(ram.fd, `guest booted by vmm pid ${process.pid}`, 0);
  const session = await client.createSession('guest-ram');
  await session.preserve(ram, 1n);
  client.onPrepare(() => console.log('vmm: live update coming, vCPUs paused'));
  console.log('vmm: guest RAM preserved, running');
} else {
  const session = await client.retrieveSession('guest-ram');
  const ram = Memfd.from(await session.retrieve(1n));
  const text = Buffer.alloc(64);
  fs.readSync(ram.fd, text, 0, text.length, 0);
  await session.finish();
  console.log(`vmm: guest RAM is back: "${text.toString().replace(/\0+$/, '')}"`);
  client.close();
}
