// Property: the broker, on the stand-in device over real sockets, answers
// every message a client sends — random JSON, random ops and fields, random
// fds attached, zero-length and oversized messages — exactly once, with ok
// or a documented refusal, and never crashes. After each storm its fds
// (the broker runs in this process: /proc/self/fd) and `stats()` are back
// to where they were, it still answers `list`, and RSS is printed.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';
import { MAX_MESSAGE } from '../../lib/broker/index';
import { FdSocket, LiveUpdateBroker, LiveUpdateClient, Memfd } from '../../lib/index';
import { noReboot, standInDevice } from './stand-in-device';
import { CallCount, Canary, expectFdTable, fdTable, fuzzParameters, watchForCrashes } from './fuzz-support';

/** Every code a broker refusal may carry: its own (protocol.ts, daemon.ts) and the device's errnos. */
const BROKER_CODES = new Set(['EPROTO', 'EINVAL', 'ENOENT', 'EEXIST', 'EDQUOT', 'EBUSY', 'EPERM', 'EMSGSIZE', 'ENOTTY', 'EBADF']);

// --- what a client sends ---------------------------------------------------

const NAMES = ['ram', 'disk', 'é'.repeat(127), 'x'.repeat(255)];
const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(256), 'a\0b', 'vm\ud800', '\udfff') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
const id = fc.oneof({ weight: 6, arbitrary: fc.nat() }, { weight: 1, arbitrary: fc.oneof(fc.double(), fc.string({ maxLength: 3 }), fc.constant(null), fc.constant(2 ** 53)) });
const OPS = ['create', 'retrieve', 'retrieved', 'release', 'adopt', 'list', 'ready'] as const;

type Wire = { kind: 'json'; text: string } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'empty' } | { kind: 'oversized'; size: number };

const wire: fc.Arbitrary<Wire> = fc.oneof(
  // Well-formed requests with plausible fields.
  { weight: 10, arbitrary: fc.record({ id, op: fc.constantFrom(...OPS), name, offset: fc.oneof(fc.constant(undefined), fc.integer({ min: -2, max: 300 }), fc.double()), failed: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 8 }), fc.integer()) }, { requiredKeys: ['id', 'op'] }).map((r) => ({ kind: 'json' as const, text: JSON.stringify(r) })) },
  // kexec, only in forms refused before its barrier (a barrier would wait on these raw clients).
  { weight: 1, arbitrary: fc.record({ id, op: fc.constant('kexec'), kernel: fc.oneof(fc.constant(''), fc.integer(), fc.constant(null)), cmdline: fc.oneof(fc.string({ maxLength: 4 }), fc.integer()) }, { requiredKeys: ['id', 'op'] }).map((r) => ({ kind: 'json' as const, text: JSON.stringify(r) })) },
  // Random fields, random ops.
  { weight: 2, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('id', 'op', 'name', 'offset', 'failed', 'kernel', '__proto__', 'constructor'), fc.string({ maxLength: 6 })), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }).map((o) => ({ kind: 'json' as const, text: JSON.stringify(o) })) },
  // Any JSON at all.
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }).map((text) => ({ kind: 'json' as const, text })) },
  // Not JSON: random bytes, broken UTF-8 included.
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) }, // sent by a python3 child: kept rare
  // Around and over the broker's 16 KiB limit.
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom(MAX_MESSAGE, MAX_MESSAGE + 1), fc.integer({ min: MAX_MESSAGE + 1, max: 64 * 1024 })).map((size) => ({ kind: 'oversized' as const, size })) },
);
const FD_KINDS = ['memfd', 'pipe', 'devnull', 'socket'] as const;
const message = fc.record({ wire, fds: fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.constantFrom(...FD_KINDS), { minLength: 1, maxLength: 3 }) }), on: fc.nat({ max: 2 }) });
const storm = fc.array(message, { minLength: 1, maxLength: 40, size: 'max' });

function payloadOf(w: Wire): Buffer {
  switch (w.kind) {
    case 'json':
      return Buffer.from(w.text);
    case 'bytes':
      return Buffer.from(w.bytes);
    case 'empty':
      return Buffer.alloc(0);
    case 'oversized': {
      // A valid request padded to `size`: at the limit it is served, over it refused.
      const head = '{"id":1,"op":"list","pad":"';
      return Buffer.from(`${head}${'p'.repeat(Math.max(0, w.size - head.length - 2))}"}`);
    }
  }
}

/** Opens fds of the given kinds; returns them and how to close them. */
function openFds(kinds: readonly (typeof FD_KINDS)[number][]): number[] {
  const b = defaultBinding();
  const fds: number[] = [];
  for (const k of kinds) {
    if (k === 'memfd') fds.push(Memfd.createSync('attached').detach());
    else if (k === 'devnull') fds.push(fs.openSync('/dev/null', 'r'));
    else if (k === 'pipe') {
      const [r, w] = b.pipeSync();
      fds.push(r!);
      fs.closeSync(w!);
    } else {
      const [x, y] = b.unix.socketPair();
      fds.push(x!);
      fs.closeSync(y!);
    }
  }
  return fds;
}

/**
 * Zero-length SEQPACKET messages, as another program may send them: this
 * library and its addon refuse to send an empty payload, python does not.
 * One python3 helper for the whole run (starting one per message costs a
 * quarter second): it takes a socket fd over its control socket, sends an
 * empty message on it, closes its copy and says so.
 */
const EMPTY_SENDER = `
import socket
ctl = socket.socket(fileno=3)
ctl.setblocking(True)  # its own file description: ours stays non-blocking
while True:
    msg, fds, _, _ = socket.recv_fds(ctl, 16, 1)
    if not msg:
        break
    s = socket.socket(fileno=fds[0])
    s.send(b"")
    s.close()
    ctl.send(b"sent")
`;
let emptySender: { control: FdSocket; child: ChildProcess } | undefined;
async function sendEmpty(socket: FdSocket): Promise<void> {
  if (!emptySender) {
    const [control, theirs] = FdSocket.pair();
    const child = spawn('python3', ['-c', EMPTY_SENDER], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
    theirs.close();
    emptySender = { control, child };
  }
  await emptySender.control.send('send', [socket]);
  expect((await emptySender.control.receive()).payload.toString()).toBe('sent');
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; !condition(); i++) {
    if (i > 2000) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// --- the broker -------------------------------------------------------------

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luod-fuzz-'));
const socketPath = path.join(dir, 'broker.sock');
const device = standInDevice();
const broker = LiveUpdateBroker.start({ socketPath, binding: device.binding, kexec: noReboot, maxQueuedReplies: 32, log: process.env.DEBUG_BROKER ? (l) => console.log('broker:', l) : undefined });
const counter = new CallCount('broker protocol messages over a real socket');
const canary = new Canary();
let baseline: Map<number, string>;
let rssBefore = 0;
let rssPeak = 0;

beforeAll(async () => {
  // The helper's control socket is part of the baseline.
  const [a, b] = FdSocket.pair();
  await sendEmpty(a);
  await b.receive();
  a.close();
  b.close();
  baseline = fdTable();
  rssBefore = process.memoryUsage().rss;
});
afterAll(() => {
  emptySender?.control.close(); // python reads the end and exits
  broker.close();
  canary.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Releases every session the storm made, through the ordinary client: the broker must still answer. */
async function releaseAll(): Promise<number> {
  using client = LiveUpdateClient.connect(socketPath, { binding: device.binding });
  const sessions = await client.listSessions();
  for (const s of sessions) await client.releaseSession(s.name);
  expect(await client.listSessions()).toEqual([]);
  return sessions.length;
}

test('every message gets one answer, ok or a documented refusal; fds, stats and list come back after each storm', async () => {
  const crashes = watchForCrashes();
  const params = fuzzParameters(120);
  const stats = broker.stats();
  let storms = 0;
  try {
    await fc.assert(
      fc.asyncProperty(storm, async (messages) => {
        storms++;
        const before = fdTable(); // per run, so a leak fails its own run and shrinking stays honest
        const sockets = [0, 1, 2].map(() => FdSocket.connect(socketPath, { maxPayload: MAX_MESSAGE }));
        const answers = sockets.map(() => [] as unknown[]);
        const problems: string[] = [];
        sockets.forEach((s, i) => {
          s.on('message', ({ payload, fds }) => {
            for (const f of fds) f.close(); // session fds handed out by create/retrieve
            let reply: { id?: unknown; ok?: unknown; error?: { code?: unknown }; event?: unknown };
            try {
              reply = JSON.parse(payload.toString());
            } catch {
              problems.push(`a reply that is not JSON: ${payload.toString().slice(0, 80)}`);
              return;
            }
            if (reply.event !== undefined) return; // a prepare event, not an answer
            if (reply.ok === false && !BROKER_CODES.has(reply.error?.code as string)) problems.push(`undocumented refusal: ${payload.toString().slice(0, 200)}`);
            else if (reply.ok !== true && reply.ok !== false) problems.push(`a reply without ok: ${payload.toString().slice(0, 200)}`);
            answers[i]!.push(reply);
          });
          s.on('error', (err) => problems.push(`client socket error: ${String(err)}`));
        });
        const sent = [0, 0, 0];
        try {
          for (const m of messages) {
            const s = sockets[m.on]!;
            const payload = payloadOf(m.wire);
            const fds = openFds(m.fds);
            try {
              if (payload.length === 0) await sendEmpty(s);
              else await s.send(payload, fds);
            } finally {
              for (const fd of fds) fs.closeSync(fd);
            }
            sent[m.on]!++;
            counter.add();
          }
          // Replies come in order on each connection: all answered once these are.
          await until(() => answers.every((a, i) => a.length >= sent[i]!), `answers ${answers.map((a) => a.length)} of ${sent}`);
          await new Promise((r) => setTimeout(r, 5)); // and no extra ones
          expect({ sent, answers }).toEqual({ sent, answers: answers.map((a, i) => a.slice(0, sent[i])) });
          expect(problems).toEqual([]);
        } finally {
          for (const s of sockets) s.close();
          // Also after a failure: the next run (shrinking replays many) starts from a quiet broker.
          await until(() => broker.stats().clients.length === stats.clients.length, 'the broker to drop the storm clients').catch(() => {});
        }
        await until(() => broker.stats().clients.length === stats.clients.length, 'the broker to drop the storm clients');
        counter.add(1 + (await releaseAll()));
        await until(() => broker.stats().clients.length === stats.clients.length, 'the broker to drop the cleanup client');
        expect(broker.stats()).toEqual(stats);
        expectFdTable(before, 'after a storm');
        canary.check('after a storm');
        crashes.check('during a storm');
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }),
      params,
    );
  } finally {
    crashes.stop();
    const rssAfter = process.memoryUsage().rss;
    counter.report(params.seed, `${storms} storms; RSS ${mb(rssBefore)} before, ${mb(rssPeak)} peak, ${mb(rssAfter)} after`);
  }
  expectFdTable(baseline, 'after all storms');
  expect(process.memoryUsage().rss).toBeLessThan(3 * rssBefore);
}, 120_000);

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
