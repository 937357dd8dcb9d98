// Calls that wait on another process end on a signal or a timeout, and
// what arrives afterwards is not lost or leaked.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { FdServer, FdSocket, LiveUpdateClient, Memfd } from '../../lib/index';
import { notifyBarrier } from '../../lib/systemd/index';
import { startReceiver } from './notify-receiver';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});
const fdCount = () => fs.readdirSync('/proc/self/fd').length;

describe('FdSocket.receive', () => {
  test('timeoutMs: ETIMEDOUT, and a message that comes later goes to the next receive', async () => {
    const [a, b] = FdSocket.pair();
    open.push(a, b);
    await expect(b.receive({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT', timeoutMs: 50 });
    await a.send(Buffer.from('late'));
    expect((await b.receive()).payload.toString()).toBe('late');
  });

  test('signal: ABORT_ERR with the reason as cause, also when aborted before the call', async () => {
    const [a, b] = FdSocket.pair();
    open.push(a, b);
    const controller = new AbortController();
    const waiting = b.receive({ signal: controller.signal });
    controller.abort('shutting down');
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'shutting down' });
    await expect(b.receive({ signal: controller.signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    using m = Memfd.createSync('after');
    await a.send(Buffer.from('x'), [m]);
    const got = await b.receive();
    expect(got.fds).toHaveLength(1);
    for (const f of got.fds) f.close();
  });

  test('bad wait options are refused', async () => {
    const [a, b] = FdSocket.pair();
    open.push(a, b);
    await expect(b.receive({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.receive({ signal: 'soon' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('LiveUpdateClient requests', () => {
  // A "broker" that accepts and never answers.
  function silentBroker() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-silent-'));
    const server = FdServer.listen(path.join(dir, 'broker.sock'));
    const accepted: FdSocket[] = [];
    server.on('connection', (s: FdSocket) => accepted.push(s));
    open.push({ close: () => (server.close(), accepted.forEach((s) => s.close()), fs.rmSync(dir, { recursive: true })) });
    return { path: server.path, accepted };
  }

  test('timeoutMs ends the wait with ETIMEDOUT; the client stays usable', async () => {
    const broker = silentBroker();
    const client = LiveUpdateClient.connect(broker.path);
    open.push(client);
    await expect(client.createSession('ram', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(client.listSessions({ timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });

  test('a reply after the abort has its fds closed, not leaked', async () => {
    const broker = silentBroker();
    const client = LiveUpdateClient.connect(broker.path);
    open.push(client);
    const controller = new AbortController();
    const waiting = client.retrieveSession('ram', { signal: controller.signal });
    const [request] = await new Promise<Buffer[]>((resolve) => {
      const check = () => (broker.accepted[0] ? broker.accepted[0].receive().then((m) => resolve([m.payload])) : setTimeout(check, 5));
      check();
    });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORT_ERR' });
    const { id } = JSON.parse(request!.toString());
    using m = Memfd.createSync('late');
    const before = fdCount();
    await broker.accepted[0]!.send(Buffer.from(JSON.stringify({ id, ok: true, session: { name: 'ram', kernelName: 'k', state: 'incoming' } })), [m]);
    await new Promise((r) => setTimeout(r, 50));
    expect(fdCount()).toBe(before);
  });
});

test('notifyBarrier: signal ends the wait with ABORT_ERR and leaks no fd', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-barrier-'));
  const address = path.join(dir, 'notify');
  const r = await startReceiver(address, 'hold');
  open.push(r);
  const before = fdCount();
  const controller = new AbortController();
  const waiting = notifyBarrier({ env: { NOTIFY_SOCKET: address }, signal: controller.signal });
  expect((await r.next()).payload).toBe('BARRIER=1');
  controller.abort();
  await expect(waiting).rejects.toMatchObject({ code: 'ABORT_ERR', operation: 'BARRIER' });
  expect(fdCount()).toBe(before);
});
