// Property: on a stream socket taken from `net` (FdSocket.from), messages
// are frames the receiver reassembles from whatever pieces the kernel
// delivers. Frames cut at any points, fds riding on the piece that starts
// their frame, come out whole, in order, each with its own fds. Garbage —
// random bytes, headers announcing more than maxPayload, partial frames,
// fds on pieces where no frame starts — yields only ERR_MESSAGE_TOO_LARGE
// or ERR_FDS_TRUNCATED, never a crash, and every fd that arrived is closed
// once the socket is.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { FdSocket, type FdMessage, Memfd } from '../../lib/index';
import { CallCount, Canary, allowed, expectFdTable, fdTable, fuzzParameters, watchForCrashes } from './fuzz-support';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-frames-'));
const socketPath = path.join(dir, 'stream.sock');
let server: net.Server;
const accepted: net.Socket[] = [];
const canary = new Canary();
let baseline: Map<number, string>;

beforeAll(async () => {
  server = net.createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  baseline = fdTable();
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  canary.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A connected pair of stream FdSockets: `tx` written raw, `rx` reassembling. */
async function streamPair(maxPayload?: number): Promise<{ tx: FdSocket; rx: FdSocket }> {
  const client = net.connect(socketPath);
  await new Promise((resolve) => client.once('connect', resolve));
  while (accepted.length === 0) await new Promise((r) => setImmediate(r));
  const rx = FdSocket.from(accepted.shift()!, maxPayload ? { maxPayload } : {});
  const tx = FdSocket.from(client);
  return { tx, rx };
}

/** Writes one piece, with fds, as one sendmsg (small: the socket buffer takes it whole). */
function write(tx: FdSocket, piece: Buffer, fds: number[]): void {
  expect(defaultBinding().unix.send(tx.fd, piece, fds)).toBe(piece.length);
}

function frame(payload: Uint8Array, fdCount: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(fdCount, 4);
  return Buffer.concat([header, payload]);
}

const text = (fd: number) => {
  const buf = Buffer.alloc(fs.fstatSync(fd).size);
  fs.readSync(fd, buf, 0, buf.length, 0);
  return buf.toString();
};

const crashes = watchForCrashes();
afterAll(() => crashes.stop());

test('frames cut anywhere come out whole and in order, each with its own fds', async () => {
  const counter = new CallCount('stream frames cut at random points');
  const params = fuzzParameters(300);
  const frames = fc.array(fc.record({ payload: fc.uint8Array({ minLength: 1, maxLength: 300 }), fds: fc.nat({ max: 3 }) }), { minLength: 1, maxLength: 12 });
  const cuts = fc.array(fc.nat({ max: 4000 }), { maxLength: 30 });
  await fc.assert(
    fc.asyncProperty(frames, cuts, async (messages, cutAt) => {
      const before = fdTable();
      const { tx, rx } = await streamPair();
      const memfds: Memfd[] = [];
      const got: FdMessage[] = [];
      try {
        const wire = Buffer.concat(messages.map((m) => frame(m.payload, m.fds)));
        // Where frames start, and the fds each carries (memfds named by frame and position).
        const starts: number[] = [];
        let at = 0;
        const fdsOf = messages.map((m, i) => {
          starts.push(at);
          at += 8 + m.payload.length;
          return Array.from({ length: m.fds }, (_, k) => {
            const mf = Memfd.createSync(`f${i}`);
            fs.writeSync(mf.fd, `${i}.${k}`);
            memfds.push(mf);
            return mf.fd;
          });
        });
        // Random cuts; and after a frame with fds, a cut where the next frame starts:
        // its fds must be the last the reader meets in the piece that brings them.
        const points = new Set(cutAt.map((c) => c % wire.length).filter((c) => c > 0));
        messages.forEach((m, i) => m.fds > 0 && i + 1 < messages.length && points.add(starts[i + 1]!));
        const bounds = [0, ...[...points].sort((a, b) => a - b), wire.length];
        for (let p = 0; p + 1 < bounds.length; p++) {
          const [from, to] = [bounds[p]!, bounds[p + 1]!];
          const fds = messages.flatMap((_, i) => (starts[i]! >= from && starts[i]! < to ? fdsOf[i]! : []));
          write(tx, wire.subarray(from, to), fds);
          counter.add();
        }
        for (let i = 0; i < messages.length; i++) got.push(await rx.receive());
        expect(got.map((g) => Buffer.from(g.payload).toString('hex'))).toEqual(messages.map((m) => Buffer.from(m.payload).toString('hex')));
        expect(got.map((g) => g.fds.map((f) => text(f.fd)))).toEqual(messages.map((m, i) => Array.from({ length: m.fds }, (_, k) => `${i}.${k}`)));
      } finally {
        for (const g of got) for (const f of g.fds) f.close();
        for (const m of memfds) m.close();
        tx.close();
        rx.close();
      }
      expectFdTable(before, 'after a stream');
      canary.check('after a stream');
      crashes.check('during a stream');
    }),
    params,
  );
  counter.report(params.seed);
  expectFdTable(baseline, 'after all streams');
}, 60_000);

test('garbage on a stream: only ERR_MESSAGE_TOO_LARGE or ERR_FDS_TRUNCATED, and every fd that arrived is closed', async () => {
  const counter = new CallCount('stream garbage and partial frames');
  const params = fuzzParameters(300);
  const piece = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
    // A header announcing any length and fd count, perhaps followed by part of its payload.
    fc.record({ length: fc.oneof(fc.nat({ max: 200 }), fc.constantFrom(1024, 0xffffffff, 2 ** 31)), count: fc.oneof(fc.nat({ max: 4 }), fc.constant(0xffffffff)), body: fc.nat({ max: 200 }) }).map(({ length, count, body }) => {
      const h = Buffer.alloc(8);
      h.writeUInt32BE(length, 0);
      h.writeUInt32BE(count, 4);
      return Buffer.concat([h, Buffer.alloc(Math.min(body, length), 0x61)]);
    }),
    // A whole, valid frame.
    fc.uint8Array({ minLength: 1, maxLength: 50 }).map((b) => frame(b, 0)),
  );
  const pieces = fc.array(fc.record({ bytes: piece, fds: fc.nat({ max: 2 }) }), { minLength: 1, maxLength: 10 });
  await fc.assert(
    fc.asyncProperty(pieces, fc.constantFrom(undefined, 64, 1024), async (list, maxPayload) => {
      const before = fdTable();
      const { tx, rx } = await streamPair(maxPayload);
      const codes: string[] = [];
      const got: FdMessage[] = [];
      rx.on('message', (m: FdMessage) => got.push(m));
      rx.on('error', (err) => codes.push(allowed(err)));
      const done = new Promise<void>((resolve) => {
        rx.once('end', resolve);
        rx.once('close', resolve);
      });
      try {
        for (const p of list) {
          const memfds = Array.from({ length: p.fds }, () => Memfd.createSync('garbage'));
          try {
            write(tx, p.bytes, memfds.map((m) => m.fd));
          } finally {
            for (const m of memfds) m.close();
          }
          counter.add();
        }
        tx.close(); // the end: whatever is half-read stays half-read
        await done;
      } finally {
        tx.close();
        rx.close();
        for (const m of got) for (const f of m.fds) f.close();
      }
      for (const c of codes) expect(['ERR_MESSAGE_TOO_LARGE', 'ERR_FDS_TRUNCATED']).toContain(c);
      expectFdTable(before, 'after a stream of garbage');
      canary.check('after a stream of garbage');
      crashes.check('during a stream of garbage');
    }),
    params,
  );
  counter.report(params.seed);
  expectFdTable(baseline, 'after all garbage');
}, 60_000);
