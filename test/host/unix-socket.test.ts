// Fds over UNIX sockets (SCM_RIGHTS) between real processes, on the host.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { FdServer, FdSocket, Memfd } from '../../lib/index';
import { MAX_PAYLOAD_LIMIT } from '../../lib/unix-socket';

const dist = path.resolve(__dirname, '../../dist/index.js');
const openFds = () => fs.readdirSync('/proc/self/fd').length;
const text = (fd: number) => {
  const buf = Buffer.alloc(fs.fstatSync(fd).size);
  fs.readSync(fd, buf, 0, buf.length, 0);
  return buf.toString();
};
const cleanup: Array<{ close(): void }> = [];
afterEach(() => cleanup.splice(0).forEach((c) => c.close()));
const track = <T extends { close(): void }>(x: T) => (cleanup.push(x), x);

describe('a socket pair', () => {
  test('carries a payload and a memfd; the receiver owns its own fd', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    using m = Memfd.createSync('shared');
    fs.writeSync(m.fd, 'guest ram');
    await a.send('take this', [m]);
    const { payload, fds } = await b.receive();
    expect(payload.toString()).toBe('take this');
    expect(fds).toHaveLength(1);
    using got = Memfd.from(fds[0]!);
    expect(got.fd).not.toBe(m.fd);
    expect(text(got.fd)).toBe('guest ram');
  });

  test('keeps message boundaries and order, with fds on the right message', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    using m1 = Memfd.createSync('one');
    using m2 = Memfd.createSync('two');
    fs.writeSync(m1.fd, '1');
    fs.writeSync(m2.fd, '2');
    await Promise.all([a.send('first', [m1]), a.send('none'), a.send('second', [m1, m2])]);
    const got = [await b.receive(), await b.receive(), await b.receive()];
    expect(got.map((g) => g.payload.toString())).toEqual(['first', 'none', 'second']);
    expect(got.map((g) => g.fds.map((f) => text(f.fd)))).toEqual([['1'], [], ['1', '2']]);
    for (const g of got) for (const f of g.fds) f.close();
  });

  test('send() takes its own copy of each fd: closing yours right away cannot change what is sent', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    const m = Memfd.createSync('copied');
    fs.writeSync(m.fd, 'original');
    const sending = a.send('x', [m]);
    m.close();
    using other = Memfd.createSync('reuses-the-number'); // likely gets m's old number
    fs.writeSync(other.fd, 'impostor');
    await sending;
    const { fds } = await b.receive();
    expect(text(fds[0]!.fd)).toBe('original');
    fds[0]!.close();
  });

  test('delivers to `message` listeners too', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    const got = new Promise<string>((resolve) => b.once('message', (m) => resolve(m.payload.toString())));
    await a.send('event');
    expect(await got).toBe('event');
  });

  test('sending and receiving many fds leaks none', async () => {
    const before = openFds();
    {
      const [a, b] = FdSocket.pair();
      for (let i = 0; i < 50; i++) {
        using m = Memfd.createSync(`m${i}`);
        await a.send('x', [m, m, m]);
        const { fds } = await b.receive();
        for (const f of fds) f.close();
      }
      a.close();
      b.close();
    }
    expect(openFds()).toBe(before);
  });

  test('unread messages stay in the kernel, which closes their fds with the socket', async () => {
    using m = Memfd.createSync('unread');
    const before = openFds();
    const [a, b] = FdSocket.pair();
    await a.send('nobody reads this', [m]);
    b.close();
    a.close();
    expect(openFds()).toBe(before);
  });

  test('a peer that hangs up ends pending receives; sending to it is EPIPE', async () => {
    const [a, b] = FdSocket.pair();
    track(a);
    const pending = a.receive();
    b.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    await expect(a.send('late')).rejects.toMatchObject({ code: 'EPIPE', operation: 'SENDMSG', message: expect.stringMatching(/^EPIPE: the peer closed the socket/) });
  });

  test('an empty payload and non-fds are refused before any syscall', () => {
    const [a] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    expect(() => a.send('')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => a.send('x', ['3' as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test('a zero-length message from a live peer is a message, not a hang-up', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    // send() refuses an empty payload; another program may send one.
    const py = 'import socket; s = socket.socket(fileno=3); s.send(b""); s.send(b"after"); s.detach()';
    await new Promise((resolve) => spawn('python3', ['-c', py], { stdio: ['ignore', 'inherit', 'inherit', a.fd] }).on('exit', resolve));
    expect((await b.receive()).payload.length).toBe(0);
    expect((await b.receive()).payload.toString()).toBe('after');
    a.close();
    await expect(b.receive()).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });

  test.each([0, 1.5, MAX_PAYLOAD_LIMIT + 1, 2 ** 32 + 1])('maxPayload %d is refused (ERR_OUT_OF_RANGE) before any socket is made', (maxPayload) => {
    const before = openFds();
    expect(() => FdSocket.pair({ maxPayload })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(openFds()).toBe(before);
  });

  test('the addon refuses a huge maxPayload itself, as a RangeError rather than an allocation that aborts', () => {
    const [a] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    expect(() => defaultBinding().unix.receive(a.fd, 2 ** 31 - 1)).toThrow(RangeError);
  });

  test('pause() leaves messages (and their fds) in the kernel until resume()', async () => {
    const [a, b] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    const got: string[] = [];
    b.on('message', ({ payload }) => got.push(payload.toString()));
    b.pause();
    await a.send('one');
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([]);
    b.resume();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['one']);
  });

  test('a message longer than maxPayload is an error, and its fds are closed', async () => {
    const [a, b] = FdSocket.pair({ maxPayload: 4 }).map(track) as [FdSocket, FdSocket];
    using m = Memfd.createSync('big');
    const before = openFds();
    await a.send('too long', [m]);
    await expect(b.receive()).rejects.toMatchObject({ code: 'ERR_MESSAGE_TOO_LARGE' });
    expect(openFds()).toBe(before);
  });
});

describe('between processes', () => {
  test('a child gets a memfd through an inherited socket, writes to it and sends its own back', async () => {
    const [mine, theirs] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const fs = require('node:fs');
        const { FdSocket, Memfd } = require(${JSON.stringify(dist)});
        const s = new FdSocket(3);
        s.receive().then(async ({ payload, fds }) => {
          fs.writeSync(fds[0].fd, 'written by the child');
          const own = Memfd.createSync('from-child');
          fs.writeSync(own.fd, 'pid ' + process.pid);
          await s.send('done:' + payload, [own]);
          s.close();
        });
      `,
      ],
      { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] },
    );
    theirs.close();
    using m = Memfd.createSync('for-child', { size: 0 });
    await mine.send('hello', [m]);
    const reply = await mine.receive();
    expect(reply.payload.toString()).toBe('done:hello');
    expect(text(m.fd)).toBe('written by the child');
    using fromChild = Memfd.from(reply.fds[0]!);
    expect(text(fromChild.fd)).toBe(`pid ${child.pid}`);
    await new Promise((resolve) => child.once('exit', resolve));
  });

  test('fds the receiver has no room for (MSG_CTRUNC): the ones that did arrive are closed and the message is an error', async () => {
    const [mine, theirs] = FdSocket.pair().map(track) as [FdSocket, FdSocket];
    const child = spawn(
      'sh',
      [
        '-c',
        `ulimit -n 64; exec "$0" -e "$1"`,
        process.execPath,
        `
        const fs = require('node:fs');
        const { FdSocket } = require(${JSON.stringify(dist)});
        const s = new FdSocket(3);
        const count = () => fs.readdirSync('/proc/self/fd').length;
        // Use up every fd but two, then receive a message carrying five.
        const filler = [];
        try { for (;;) filler.push(fs.openSync('/dev/null', 'r')); } catch {}
        fs.closeSync(filler.pop());
        fs.closeSync(filler.pop());
        const before = count();
        s.receive().then(
          () => console.log(JSON.stringify({ received: true })),
          (err) => {
            const leaked = count() - before;
            for (const f of filler) fs.closeSync(f);
            console.log(JSON.stringify({ code: err.code, leaked }));
            s.close();
          },
        );
      `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit', theirs.fd] },
    );
    theirs.close();
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    using m = Memfd.createSync('too-many');
    // The child reads only after filling its fd table; until then the message waits in the kernel.
    await mine.send('five fds', [m, m, m, m, m]);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(JSON.parse(out)).toEqual({ code: 'ERR_FDS_TRUNCATED', leaked: 0 });
  });

  test('a server at a path sees who connects (SO_PEERCRED) and hands out fds', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-sock-'));
    const socketPath = path.join(dir, 'broker.sock');
    const server = track(FdServer.listen(socketPath, { mode: 0o600 }));
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    server.on('connection', async (client: FdSocket) => {
      track(client);
      const cred = client.peerCredentials();
      using m = Memfd.createSync('for-client');
      fs.writeSync(m.fd, JSON.stringify(cred));
      await client.send('yours', [m]);
    });
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const fs = require('node:fs');
        const { FdSocket } = require(${JSON.stringify(dist)});
        const s = FdSocket.connect(${JSON.stringify(socketPath)});
        s.receive().then(({ fds }) => {
          const buf = Buffer.alloc(fs.fstatSync(fds[0].fd).size);
          fs.readSync(fds[0].fd, buf, 0, buf.length, 0);
          process.stdout.write(buf);
          s.close();
        });
      `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(JSON.parse(out)).toEqual({ pid: child.pid, uid: process.getuid!(), gid: process.getgid!(), groups: expect.any(Array) });
    server.close();
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  test('connecting where nothing listens says so', () => {
    expect(() => FdSocket.connect('/nonexistent/broker.sock')).toThrow(
      expect.objectContaining({ code: 'ENOENT', operation: 'CONNECT', message: "ENOENT: nothing listens at /nonexistent/broker.sock, connect '/nonexistent/broker.sock'" }),
    );
  });

  test('the socket appears at its path with the mode asked for, and nothing else is left in the directory', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-sock-'));
    const socketPath = path.join(dir, 's.sock');
    track(FdServer.listen(socketPath, { mode: 0o600 }));
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['s.sock']);
  });

  test('a directory others may write (no sticky bit) is refused before anything is made', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-sock-'));
    fs.chmodSync(dir, 0o777);
    expect(() => FdServer.listen(path.join(dir, 's.sock'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/others may write/) }));
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.chmodSync(dir, 0o1777); // /tmp-like: others cannot remove or rename our file
    track(FdServer.listen(path.join(dir, 's.sock')));
  });

  test('a stale socket file is replaced; a live server is EADDRINUSE', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-sock-'));
    const socketPath = path.join(dir, 's.sock');
    const first = FdServer.listen(socketPath);
    expect(() => FdServer.listen(socketPath)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    first.close();
    track(FdServer.listen(socketPath));
  });
});

describe('sockets taken over from net', () => {
  async function netPair(): Promise<{ server: FdServer; client: FdSocket; accepted: Promise<FdSocket> }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-net-'));
    const socketPath = path.join(dir, 'net.sock');
    const netServer = net.createServer();
    await new Promise<void>((resolve) => netServer.listen(socketPath, resolve));
    const server = track(FdServer.from(netServer, { maxPayload: 1 << 20 }));
    const accepted = new Promise<FdSocket>((resolve) => server.once('connection', (s: FdSocket) => resolve(track(s))));
    const netClient = net.connect(socketPath);
    await new Promise<void>((resolve) => netClient.once('connect', resolve));
    return { server, client: track(FdSocket.from(netClient)), accepted };
  }

  test('a net.Server and a net.Socket, once taken over, carry framed messages with fds', async () => {
    const { server, client, accepted } = await netPair();
    expect(fs.existsSync(server.path)).toBe(true);
    const peer = await accepted;
    expect(client.kind).toBe('stream');
    expect(peer.kind).toBe('stream');
    using m = Memfd.createSync('over-stream');
    fs.writeSync(m.fd, 'stream data');
    const big = Buffer.alloc(200 * 1024, 'b');
    const sends = [client.send('first', [m]), client.send('no fds'), client.send(big), client.send('last', [m, m])];
    const got: Array<{ text: string; fds: string[] }> = [];
    const receiver = track(peer);
    for (let i = 0; i < 4; i++) {
      const msg = await receiver.receive();
      got.push({ text: msg.payload.length > 100 ? `${msg.payload.length} bytes` : msg.payload.toString(), fds: msg.fds.map((f) => text(f.fd)) });
      for (const f of msg.fds) f.close();
    }
    await Promise.all(sends);
    expect(got).toEqual([
      { text: 'first', fds: ['stream data'] },
      { text: 'no fds', fds: [] },
      { text: `${200 * 1024} bytes`, fds: [] },
      { text: 'last', fds: ['stream data', 'stream data'] },
    ]);
  }, 20_000);

  test('many small framed messages with fds keep their order and their fds', async () => {
    const { client, accepted } = await netPair();
    const peer = await accepted;
    const before = openFds();
    const sent: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      using m = Memfd.createSync(`m${i}`);
      fs.writeSync(m.fd, String(i));
      sent.push(client.send(`msg ${i}`, i % 3 === 0 ? [m] : []));
    }
    for (let i = 0; i < 100; i++) {
      const msg = await peer.receive();
      expect(msg.payload.toString()).toBe(`msg ${i}`);
      expect(msg.fds.map((f) => text(f.fd))).toEqual(i % 3 === 0 ? [String(i)] : []);
      for (const f of msg.fds) f.close();
    }
    await Promise.all(sent);
    expect(openFds()).toBe(before);
  }, 20_000);

  // Found by fuzzing stream frames (test/host/fuzz-stream-frames.test.ts):
  // with SO_PASSCRED set, the kernel attaches SCM_CREDENTIALS to every
  // recvmsg() on a stream socket, the one that finds the end included, so
  // the end read as a zero-length message and FdSocket read it again and
  // again, blocking the event loop for good.
  test('the end of a stream is the end, not an empty message', async () => {
    const { client, accepted } = await netPair();
    const peer = await accepted;
    client.close();
    // Through the addon first: before the fix, FdSocket spun on this forever.
    expect(defaultBinding().unix.receive(peer.fd, 64 * 1024)).toMatchObject({ eof: true, payload: Buffer.alloc(0), fds: [] });
    await expect(peer.receive()).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
  });

  test('only a net.Socket that has read nothing yet can be taken over', async () => {
    expect(() => FdSocket.from({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-net-'));
    const socketPath = path.join(dir, 'read.sock');
    const netServer = net.createServer((c) => c.end('already here'));
    await new Promise<void>((resolve) => netServer.listen(socketPath, resolve));
    const netClient = net.connect(socketPath);
    await new Promise((resolve) => netClient.once('data', resolve));
    expect(() => FdSocket.from(netClient)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    netClient.destroy();
    netServer.close();
  });
});
