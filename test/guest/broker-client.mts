// A client of the live update broker, run by test/guest/broker.mts as
// another uid. Prints one JSON line per event on stdout.
//   keep NAME DATA [--no-ack|--fail-prepare]
//                               create NAME, preserve a memfd with DATA, hold it;
//                               re-adopt it if the broker restarts
//   grab NAME                   ask for NAME over a raw socket, then stop
//                               (SIGSTOP) without reading the reply
//   check NAME DATA             after the live update: retrieve NAME, compare, finish
//   try NAME                    try to retrieve NAME; report the error code
import * as fs from 'node:fs';
import { FdSocket, LiveUpdateClient, Memfd, type Session } from 'liveupdate';

const [socketPath, command, name, data] = process.argv.slice(2) as [string, string, string, string];
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ pid: process.pid, uid: process.getuid!(), ...event })}\n`);

function connect(): LiveUpdateClient {
  return LiveUpdateClient.connect(socketPath);
}

async function keep(noAck: boolean, failPrepare: boolean) {
  process.on('warning', (w) => say({ event: 'warning', name: w.name, code: (w as { code?: string }).code, message: w.message }));
  let client = connect();
  let session: Session;
  try {
    session = await client.createSession(name);
  } catch (err) {
    say({ event: 'refused', code: (err as { code?: string }).code, message: (err as Error).message });
    process.exit(1);
  }
  using memfd = Memfd.createSync(name);
  fs.writeSync(memfd.fd, data);
  await session.preserve(memfd, 1);
  const watch = (c: LiveUpdateClient) => {
    c.onPrepare(() => {
      say({ event: 'prepare' });
      if (failPrepare) throw new Error('cannot pause the guest: disk full');
      return noAck ? new Promise(() => {}) : undefined;
    });
  };
  watch(client);
  say({ event: 'kept', kernelName: session.name });
  // A broker restart drops the connection: reconnect and hand the session back.
  setInterval(async () => {
    try {
      await client.listSessions();
    } catch {
      try {
        client.close();
        client = connect();
        watch(client);
        await client.adoptSession(name, session);
        say({ event: 'adopted' });
      } catch {
        // the broker is not back yet
      }
    }
  }, 300);
}

async function check() {
  const client = connect();
  try {
    const session = await client.retrieveSession(name);
    using fd = session.retrieveSync(1);
    const buf = Buffer.alloc(fs.fstatSync(fd.fd).size);
    fs.readSync(fd.fd, buf, 0, buf.length, 0);
    session.finishSync();
    session.close();
    say({ event: 'checked', ok: buf.toString() === data, got: buf.toString(), direction: session.direction });
  } catch (err) {
    say({ event: 'failed', code: (err as { code?: string }).code, message: (err as Error).message });
  }
  client.close();
}

async function attempt() {
  const client = connect();
  try {
    await client.retrieveSession(name);
    say({ event: 'retrieved' });
  } catch (err) {
    say({ event: 'failed', code: (err as { code?: string }).code, message: (err as Error).message });
  }
  client.close();
}

async function grab() {
  const socket = FdSocket.connect(socketPath);
  await socket.send(JSON.stringify({ id: 1, op: 'retrieve', name }));
  say({ event: 'sent' });
  process.kill(process.pid, 'SIGSTOP');
}

if (command === 'keep') await keep(process.argv.includes('--no-ack'), process.argv.includes('--fail-prepare'));
else if (command === 'grab') await grab();
else if (command === 'check') await check();
else if (command === 'try') await attempt();
