// The broker on the host, over real sockets, with a stand-in device
// (test/host/stand-in-device.ts): what one client can make it hold, and
// hand-offs that must not lose a session. The same broker runs on the real
// kernel across a real kexec in the VM tier (test/vm/broker.test.ts).
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { type BrokerOptions, FdServer, FdSocket, LiveUpdate, LiveUpdateBroker, LiveUpdateClient, Memfd, OwnedFd, type Session, kernelSessionName } from '../../lib/index';
import { defaultBinding } from '../../lib/binding';
import type { SessionStore } from '../../lib/broker/daemon';
import { noReboot, standInDevice } from './stand-in-device';

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).reverse().forEach((c) => c()));

function startBroker(options: Partial<BrokerOptions> = {}, incoming: Record<string, Record<string, string>> = {}, device = standInDevice(incoming)) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-'));
  const socketPath = path.join(dir, 'broker.sock');
  const log = new EventEmitter();
  const broker = LiveUpdateBroker.start({ socketPath, binding: device.binding, kexec: noReboot, log: (line) => log.emit('line', line), ...options });
  cleanup.push(() => {
    broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const logged = (pattern: RegExp) => new Promise<string>((resolve) => {
    const on = (line: string) => pattern.test(line) && (log.off('line', on), resolve(line));
    log.on('line', on);
  });
  const connect = () => {
    const c = LiveUpdateClient.connect(socketPath, { binding: device.binding });
    cleanup.push(() => c.close());
    return c;
  };
  return { broker, socketPath, device, logged, connect, dir };
}

// For the figures a run prints (the broker shares this process): no assertion on them.
function rssSampler() {
  const mb = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  const before = process.memoryUsage().rss;
  let peak = before;
  return {
    sample: () => void (peak = Math.max(peak, process.memoryUsage().rss)),
    done: () => `process RSS ${mb(before)} before, ${mb(peak)} peak, ${mb(process.memoryUsage().rss)} after`,
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('hand-offs', () => {
  test('a client that goes away between its retrieve and reading the reply loses nothing: the next one gets the session', async () => {
    const kernelName = kernelSessionName(process.getuid!(), 'ram');
    const { socketPath, logged, connect } = startBroker({}, { [kernelName]: { 1: 'guest RAM' } });
    const raw = FdSocket.connect(socketPath);
    const handing = logged(/^handing "ram" to pid/);
    await raw.send(JSON.stringify({ id: 1, op: 'retrieve', name: 'ram' }));
    await handing;
    const wentAway = logged(/went away before it had "ram"; it can be retrieved again/);
    raw.close(); // the reply, and the session fd in it, die unread
    await wentAway;
    using session = await connect().retrieveSession('ram');
    expect(session.direction).toBe('incoming');
    using fd = session.retrieveSync(1);
    expect(fs.readFileSync(`/proc/self/fd/${fd.fd}`, 'utf8')).toBe('guest RAM');
  });

  test('once the client says it has the session, it is handed out for good', async () => {
    const kernelName = kernelSessionName(process.getuid!(), 'ram');
    const { broker, connect } = startBroker({}, { [kernelName]: { 1: 'x' } });
    const client = connect();
    using _ = await client.retrieveSession('ram');
    expect(broker.sessions()).toEqual([expect.objectContaining({ name: 'ram', state: 'handed-out' })]);
    await expect(client.retrieveSession('ram')).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('the prepare barrier', () => {
  test('a prepare handler that throws: the broker hears why, the live update is refused, the client gets a warning', async () => {
    const { broker, connect } = startBroker();
    const client = connect();
    client.onPrepare(() => {
      throw new Error('cannot pause vCPUs');
    });
    await client.listSessions();
    const warned = new Promise<Error & { code?: string }>((resolve) => process.once('warning', resolve));
    const notReady = await broker.kexec({ kernel: '/boot/next', timeoutMs: 5000 });
    expect(notReady).toEqual([{ pid: process.pid, uid: process.getuid!(), reason: 'its prepare handler failed: cannot pause vCPUs' }]);
    expect(await warned).toMatchObject({ name: 'LiveUpdateWarning', code: 'LIVEUPDATE_PREPARE_FAILED' });
  });

  test('a second kexec request while the first is in its barrier is EBUSY, and one may ask again after a refusal', async () => {
    const { broker, connect, logged } = startBroker();
    const client = connect();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const preparing = new Promise<void>((r) => (reached = r));
    client.onPrepare(() => (reached(), gate));
    await client.listSessions();
    const first = broker.kexec({ kernel: '/boot/next', timeoutMs: 5000 });
    await preparing;
    await expect(broker.kexec({ kernel: '/boot/next' })).rejects.toMatchObject({ code: 'EBUSY' });
    const rebootTried = logged(/the reboot failed/);
    release();
    expect(await first).toEqual([]);
    await rebootTried; // the host's stand-in kexec cannot reboot: the broker takes requests again
    client.onPrepare(() => new Promise(() => {})); // never ready
    expect(await broker.kexec({ kernel: '/boot/next', timeoutMs: 50 })).toHaveLength(1);
  });
});

describe('what one client can make the broker hold', () => {
  test('30 000 retrieves never read: the broker stops reading at its limit, holds a bounded number of fds, and serves others', async () => {
    const { broker, socketPath, connect } = startBroker({ maxQueuedReplies: 32 });
    const owner = connect();
    const ram = await owner.createSession('ram'); // an outgoing session: every retrieve reply carries its fd
    cleanup.push(() => ram.close());
    const other = connect();
    await other.listSessions();
    const before = openFds();
    const rss = rssSampler();
    const flood = FdSocket.connect(socketPath);
    for (let id = 1; id <= 30_000; id++) void flood.send(JSON.stringify({ id, op: 'retrieve', name: 'ram' })).catch(() => {});
    await until(() => broker.stats().clients.some((c) => c.paused));
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      peak = Math.max(peak, openFds() - before);
      rss.sample();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await other.listSessions()).toEqual([expect.objectContaining({ name: 'ram' })]); // others are still served
    expect(Math.max(...broker.stats().clients.map((c) => c.queuedReplies))).toBeLessThanOrEqual(4 * 32);
    expect(peak).toBeLessThan(4 * 32 + 10);
    flood.close();
    await until(() => broker.stats().clients.length === 2);
    await until(() => openFds() <= before); // every copy the broker took is closed again
    console.log(`flood: 30000 retrieves never read: at most ${peak} fds over the baseline of ${before}, back to ${openFds()}; ${rss.done()}`);
  }, 30_000);

  test('requests never read pile up no further than the limit: the broker stops reading them', async () => {
    const { broker, socketPath } = startBroker({ maxQueuedReplies: 8 });
    const flood = FdSocket.connect(socketPath);
    cleanup.push(() => flood.close());
    const rss = rssSampler();
    for (let id = 1; id <= 50_000; id++) void flood.send(JSON.stringify({ id, op: 'list' })).catch(() => {});
    await until(() => broker.stats().clients.some((c) => c.paused));
    await new Promise((r) => setTimeout(r, 50));
    rss.sample();
    expect(broker.stats().clients[0]!.queuedReplies).toBeLessThanOrEqual(4 * 8);
    flood.close();
    await until(() => broker.stats().clients.length === 0);
    console.log(`flood: 50000 lists never read: ${broker.stats().clients.length} clients left; ${rss.done()}`);
  });

  test('connections are capped per uid: the one over is refused with EAGAIN and closed at once', async () => {
    const { broker, connect } = startBroker({ maxConnectionsPerUid: 3 });
    const ok = [connect(), connect(), connect()];
    await Promise.all(ok.map((c) => c.listSessions()));
    await expect(connect().listSessions()).rejects.toMatchObject({ code: 'EAGAIN', message: expect.stringMatching(/has 3 connections to the broker already/) });
    expect(broker.stats().clients).toHaveLength(3);
  });

  test('connections are capped in total', async () => {
    const { connect } = startBroker({ maxConnections: 2 });
    await Promise.all([connect(), connect()].map((c) => c.listSessions()));
    await expect(connect().listSessions()).rejects.toMatchObject({ code: 'EAGAIN', message: expect.stringMatching(/has 2 connections already/) });
  });

  test('a uid at its session cap can still list all of them: 256 sessions with 255-byte names come back in pages', async () => {
    const { connect } = startBroker();
    const client = connect();
    const names = Array.from({ length: 256 }, (_, i) => `${String(i).padStart(3, '0')}${'é'.repeat(126)}`);
    for (const name of names) (await client.createSession(name)).close();
    expect(Buffer.byteLength(names[0]!)).toBe(255);
    const listed = await client.listSessions();
    expect(listed.map((s) => s.name)).toEqual(names);
  });
});

describe('on a service manager (systemd): the fd store, socket activation, a restart', () => {
  // Like systemd's store: keeps its own duplicate of what it is given.
  function recordingStore(capacity?: number) {
    const kept = new Map<string, OwnedFd>();
    const events: string[] = [];
    const store: SessionStore = {
      capacity,
      keep: (name, file) => {
        events.push(`keep ${name}`);
        kept.get(name)?.close();
        kept.set(name, new OwnedFd(defaultBinding().unix.dup(file.fd)));
      },
      drop: (name) => {
        events.push(`drop ${name}`);
        kept.get(name)?.close();
        kept.delete(name);
      },
      flush: async () => void events.push('flush'),
    };
    const record = () => JSON.parse(fs.readFileSync(`/proc/self/fd/${kept.get('luod-record')!.fd}`, 'utf8')) as { sessions: Array<{ uid: number; name: string }> };
    return { store, kept, events, record };
  }

  test('every session it holds is kept in the store, and the record of who owns which follows each change', async () => {
    const uid = process.getuid!();
    const { store, events } = recordingStore();
    let rebooted = false;
    const { broker, connect, logged } = startBroker({ store, reboot: () => void (rebooted = true) }, { [kernelSessionName(uid, 'old')]: { 1: 'x' } });
    const client = connect();
    (await client.createSession('ram')).close();
    (await client.createSession('scratch')).close();
    await client.releaseSession('scratch');
    (await client.retrieveSession('old')).close();
    const rebooting = logged(/rebooting into/);
    expect(await broker.kexec({ kernel: '/boot/next' })).toEqual([]);
    await rebooting;
    await until(() => rebooted);
    const k = (name: string) => kernelSessionName(uid, name);
    const record = ['drop luod-record', 'keep luod-record'];
    expect(events).toEqual([
      ...record, // at start: nothing outgoing yet
      `keep ${k('ram')}`, ...record,
      `keep ${k('scratch')}`, ...record,
      `drop ${k('scratch')}`, ...record,
      `drop ${k('old')}`, // handed out; it was never outgoing here
      ...record, 'flush', // at the kexec
    ]);
  });

  test('a kexec nobody told the broker about (`systemctl kexec`) keeps the client names: the record is in the store already', async () => {
    const uid = process.getuid!();
    const { store, kept, record } = recordingStore();
    const { broker, connect } = startBroker({ store });
    const client = connect();
    (await client.createSession('ram')).close();
    (await client.createSession('disk')).close();
    expect(record().sessions.map((s) => [s.uid, s.name])).toEqual([[uid, 'ram'], [uid, 'disk']]);
    expect(Memfd.from(defaultBinding().unix.dup(kept.get('luod-record')!.fd)).getSealsSync()).toContain('write'); // nobody edits it in the store
    client.close();
    broker.close();
  });

  test('after the live update, the broker takes the record from the store: clients see their own names before retrieving', async () => {
    const uid = process.getuid!();
    const other = uid + 1;
    const names = { [kernelSessionName(uid, 'ram')]: { 1: 'mine' }, [kernelSessionName(other, 'ram')]: { 1: 'theirs' } };
    const device = standInDevice(names);
    using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: device.binding });
    const handedOver = Object.keys(names).map((n) => lu.retrieveSessionSync(n)); // as the manager hands them back
    const previous = Memfd.createSync('luod-record');
    fs.writeSync(previous.fd, JSON.stringify({ version: 1, sessions: [{ uid, name: 'ram', kernelName: kernelSessionName(uid, 'ram') }, { uid: other, name: 'ram', kernelName: kernelSessionName(other, 'ram') }] }));
    const { store, record } = recordingStore();
    const { connect } = startBroker({ handedOver, handedOverRecord: previous, store }, {}, device);
    const client = connect();
    expect(await client.listSessions()).toEqual([{ name: 'ram', kernelName: kernelSessionName(uid, 'ram'), state: 'incoming' }]);
    expect(previous.closed).toBe(true); // read, then the broker's to close
    expect(record().sessions).toEqual([]); // the new record: nothing outgoing yet
    using got = await client.retrieveSession('ram');
    using fd = got.retrieveSync(1);
    expect(fs.readFileSync(`/proc/self/fd/${fd.fd}`, 'utf8')).toBe('mine');
  });

  test('sessions handed back by the store (after a restart, or after `systemctl kexec`) are served without the device', async () => {
    const uid = process.getuid!();
    const device = standInDevice({ [kernelSessionName(uid, 'ram')]: { 7: 'kept by systemd' } });
    // The manager retrieved it after the kexec, before the broker started.
    using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: device.binding });
    const session = lu.retrieveSessionSync(kernelSessionName(uid, 'ram'));
    const { store, kept } = recordingStore();
    const { connect } = startBroker({ handedOver: [session], store }, {}, device);
    using got = await connect().retrieveSession('ram');
    using fd = got.retrieveSync(7);
    expect(fs.readFileSync(`/proc/self/fd/${fd.fd}`, 'utf8')).toBe('kept by systemd');
    // (the device could not have given it again: a retrieve is once only)
    expect([...kept.keys()]).toEqual(['luod-record']); // handed out for good: not kept any more
  });

  test('a full store refuses new sessions up front (ENOSPC), naming FileDescriptorStoreMax', async () => {
    const { store } = recordingStore(3);
    const { connect } = startBroker({ store });
    const client = connect();
    (await client.createSession('a')).close();
    (await client.createSession('b')).close();
    await expect(client.createSession('c')).rejects.toMatchObject({ code: 'ENOSPC', message: expect.stringMatching(/FileDescriptorStoreMax=3/) });
  });

  test('a socket made by the service manager is served, and left in place when the broker stops', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-activated-'));
    const socketPath = path.join(dir, 'broker.sock');
    const listening = defaultBinding().unix.listen(socketPath, 16); // what systemd's ListenSequentialPacket= makes
    const { broker } = startBroker({ listenFd: new OwnedFd(listening), socketPath });
    const client = LiveUpdateClient.connect(socketPath);
    expect(await client.listSessions()).toEqual([]);
    client.close();
    broker.close();
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    fs.rmSync(dir, { recursive: true });
  });

  test('only a SOCK_SEQPACKET socket is taken as the listening socket', () => {
    using m = Memfd.createSync('not a socket');
    expect(() => FdServer.fromListening(m.fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('trust', () => {
  test('two names differing only in a lone surrogate are refused, not mapped to one session', async () => {
    const { socketPath } = startBroker();
    using raw = FdSocket.connect(socketPath);
    await raw.send('{"id":1,"op":"create","name":"vm\\ud800"}');
    expect(JSON.parse((await raw.receive()).payload.toString())).toMatchObject({ id: 1, ok: false, error: { code: 'EINVAL' } });
  });

  test('a client refuses a server run by a uid it does not trust, before sending anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-other-'));
    fs.chownSync(dir, 65534, 65534);
    const socketPath = path.join(dir, 'broker.sock');
    const script = `const { FdServer } = require(${JSON.stringify(path.resolve(__dirname, '../../dist/index.js'))});
      const s = FdServer.listen(${JSON.stringify(socketPath)}, { mode: 0o666 }); s.on('connection', () => {}); console.log('listening');`;
    const other = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(() => {
      other.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await new Promise((resolve) => other.stdout!.once('data', resolve));
    expect(() => LiveUpdateClient.connect(socketPath)).toThrow(expect.objectContaining({ code: 'EPERM', message: expect.stringMatching(/runs as uid 65534/) }));
    LiveUpdateClient.connect(socketPath, { trustUids: [65534] }).close();
  });
});

test('a memfd stays usable by the test itself (the stand-in device closes nothing of ours)', () => {
  using m = Memfd.createSync('canary');
  expect(m.getSealsSync()).toEqual([]);
});
