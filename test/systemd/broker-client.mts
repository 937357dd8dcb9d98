// broker-client-*.service's program: a client of the live update broker,
// run as an unprivileged uid. Boot 1: creates a session per name given,
// preserves a memfd in each (token 7) and leaves it with the broker; the
// broker's store may be full before the last. Later boots: lists what the
// broker has for this uid, retrieves each, reads it back and FINISHes it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { LiveUpdateClient, Memfd } from 'liveupdate';
import { type BrokerClientRecord, kexecCount, outcomeOf, record } from './record.mjs';

const SOCKET = '/run/liveupdate/broker.sock';
const TOKEN = 7;
const uid = process.getuid!();
const r: BrokerClientRecord = { unit: 'broker-client', uid, boot: NaN, ok: false, listed: [] };
let client: LiveUpdateClient | undefined;
try {
  r.boot = kexecCount().count + 1;
  client = LiveUpdateClient.connect(SOCKET);
  if (r.boot === 1) {
    r.created = {};
    for (const name of process.argv.slice(2)) {
      try {
        using session = await client.createSession(name);
        using memfd = Memfd.createSync(name);
        const content = `${name} of uid ${uid}: ${randomBytes(8).toString('hex')}`;
        fs.writeSync(memfd.fd, content);
        await session.preserve(memfd, TOKEN);
        r.created[name] = { content };
      } catch (err) {
        r.created[name] = outcomeOf(err);
      }
    }
    r.listed = (await client.listSessions()).map(({ name, state }) => ({ name, state }));
  } else {
    r.listed = (await client.listSessions()).map(({ name, state }) => ({ name, state }));
    r.retrieved = {};
    for (const { name } of r.listed) {
      try {
        using session = await client.retrieveSession(name);
        using memfd = session.retrieveSync(TOKEN);
        r.retrieved[name] = { content: fs.readFileSync(`/proc/self/fd/${memfd.fd}`, 'utf8') };
        await session.finish();
      } catch (err) {
        r.retrieved[name] = outcomeOf(err);
      }
    }
  }
  r.ok = true;
} catch (err) {
  r.error = (err as Error).stack ?? String(err);
} finally {
  client?.close();
}
record(r);
