// A broker in a process of its own, run by test/guest/broker.mts so that it
// can be killed with SIGKILL between the prepare barrier and the reboot:
// its reboot hook reports on stdout and then waits, so the kill lands with
// the barrier passed, the next kernel loaded and the record written, and
// reboot(2) never called. One JSON line per event on stdout; its log goes
// to stderr.
//   broker-process.mjs SOCKET GID UID,UID…
import { LiveUpdateBroker } from 'liveupdate';

const [socketPath, gid, allow] = process.argv.slice(2) as [string, string, string];
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...event })}\n`);

const broker = LiveUpdateBroker.start({
  socketPath,
  gid: Number(gid),
  allowUids: allow.split(',').map(Number),
  barrierTimeoutMs: 3000,
  log: (line) => process.stderr.write(`luod (own process): ${line}\n`),
  reboot: () => {
    say({ event: 'rebooting', sessions: broker.sessions() });
    return new Promise<never>(() => {}); // the parent's SIGKILL comes first
  },
});
say({ event: 'listening' });
