// Guest workload for the broker (issue: multi-process live updates): this
// process runs `LiveUpdateBroker` as root; clients of different uids run
// test/guest/broker-client.mts. Stage 1 sets up sessions, restarts the
// broker, kills a client, feeds it bad messages and runs the barrier; the
// broker then live-updates the VM. Stage 2 starts a new broker, and each
// client must get back exactly its own sessions. Each observation is a JSON
// line in $LIVEUPDATE_VM_OUT/broker.jsonl for test/vm/broker.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { FdSocket, LiveUpdateBroker, LiveUpdateClient } from 'liveupdate';
import { nextStageCmdline, vmStage } from 'liveupdate/vm';

export interface BrokerStep {
  stage: number;
  step: string;
  [key: string]: unknown;
}

const stage = vmStage();
const out = path.join(process.env.LIVEUPDATE_VM_OUT!, 'broker.jsonl');
const record = (step: string, fields: Record<string, unknown> = {}) => {
  fs.appendFileSync(out, `${JSON.stringify({ stage, step, ...fields })}\n`);
  console.log(`broker ${stage}: ${step} ${JSON.stringify(fields)}`);
};
const SOCKET = '/run/luod/broker.sock';
// The broker's log, and a way to wait for a line in it (what it did, not a guess at when).
const logWaiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
const log = (line: string) => {
  console.log(`luod: ${line}`);
  for (const w of logWaiters.filter((x) => x.pattern.test(line))) {
    logWaiters.splice(logWaiters.indexOf(w), 1);
    w.resolve();
  }
};
const logged = (pattern: RegExp) => new Promise<void>((resolve) => logWaiters.push({ pattern, resolve }));
const ALLOWED = [1000, 1001];
// Every client is in this group, which owns the socket (mode 0660), so the
// broker's own allowlist is what refuses uid 1002.
const CLIENTS_GID = 2000;
const brokerOptions = { socketPath: SOCKET, gid: CLIENTS_GID, allowUids: ALLOWED, barrierTimeoutMs: 3000, log };

// Clients run as other uids, which may not read this checkout: give them a
// world-readable copy of what they load.
const root = new URL('../..', import.meta.url).pathname;
const app = '/run/luod-app';
const addon = path.relative(root, createRequire(import.meta.url)('node-gyp-build').path(root)); // build/ or prebuilds/
for (const part of ['package.json', 'dist', 'build-test/guest', addon, 'node_modules/node-gyp-build']) {
  fs.cpSync(path.join(root, part), path.join(app, part), { recursive: true });
}
fs.chmodSync('/run', 0o755);
execChmod(app);

function execChmod(dir: string) {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) execChmod(p);
    else fs.chmodSync(p, 0o644);
  }
}

interface Running {
  child: ChildProcess;
  events: Array<Record<string, unknown>>;
  next(event: string): Promise<Record<string, unknown>>;
  /** The n-th `event` (1-based), once it has come. */
  nth(event: string, n: number): Promise<Record<string, unknown>>;
}

function client(uid: number, ...args: string[]): Running {
  return watch(
    spawn(process.execPath, [path.join(app, 'build-test/guest/broker-client.mjs'), SOCKET, ...args], {
      uid,
      gid: CLIENTS_GID,
      cwd: app,
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
    args.join(' '),
  );
}

/** A broker in its own process (test/guest/broker-process.mts), to be killed with SIGKILL. */
function brokerProcess(): Running {
  const script = path.join(root, 'build-test/guest/broker-process.mjs');
  return watch(spawn(process.execPath, [script, SOCKET, String(CLIENTS_GID), ALLOWED.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] }), 'broker process');
}

/** Collects a child's JSON lines (one event each) and lets us wait for them. */
function watch(child: ChildProcess, what: string): Running {
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ event: string; resolve: (e: Record<string, unknown>) => void }> = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const e = JSON.parse(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
      events.push(e);
      for (const w of waiters.filter((x) => x.event === e.event)) w.resolve(e);
    }
  });
  return {
    child,
    events,
    next: (event) =>
      new Promise((resolve, reject) => {
        const seen = events.find((e) => e.event === event);
        if (seen) return resolve(seen);
        waiters.push({ event, resolve });
        child.once('exit', (code) => setTimeout(() => reject(new Error(`${what} exited (${code}) before ${event}`)), 100));
      }),
    nth: (event, n) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const seen = events.filter((e) => e.event === event);
          if (seen.length >= n) resolve(seen[n - 1]!);
        };
        check();
        waiters.push({ event, resolve: check });
        child.once('exit', (code) => setTimeout(() => reject(new Error(`${what} exited (${code}) before ${event} #${n}`)), 100));
      }),
  };
}

async function rawExchange(payload: Buffer | string) {
  using s = FdSocket.connect(SOCKET);
  await s.send(payload);
  const reply = JSON.parse((await s.receive()).payload.toString());
  return reply;
}

if (stage === 1) {
  let broker = LiveUpdateBroker.start(brokerOptions);
  const a = client(1000, 'keep', 'ram', 'A-data');
  const b = client(1001, 'keep', 'ram', 'B-data');
  record('two uids create the same name', { a: await a.next('kept'), b: await b.next('kept') });

  const c = client(1002, 'keep', 'ram', 'C-data');
  record('a uid outside the allowlist', await c.next('refused'));

  broker.close();
  broker = LiveUpdateBroker.start(brokerOptions);
  record('broker restarted; clients re-adopt', { a: await a.next('adopted'), b: await b.next('adopted'), sessions: broker.sessions() });

  // The broker killed with SIGKILL between its barrier and the reboot, then
  // restarted: it runs in a process of its own for this, and its reboot
  // hook holds the reboot back until the kill.
  broker.close();
  const doomedBroker = brokerProcess();
  await doomedBroker.next('listening');
  await Promise.all([a.nth('adopted', 2), b.nth('adopted', 2)]);
  const brokerExit = new Promise<NodeJS.Signals | null>((resolve) => doomedBroker.child.once('exit', (_code, signal) => resolve(signal)));
  {
    using root = LiveUpdateClient.connect(SOCKET);
    const answer = await root.requestKexec({ kernel: process.env.LIVEUPDATE_VM_KERNEL!, cmdline: nextStageCmdline(2), timeoutMs: 3000 }).then(
      () => ({ ok: true }),
      (err) => ({ ok: false, code: err.code, message: err.message }),
    );
    const rebooting = await doomedBroker.next('rebooting');
    doomedBroker.child.kill('SIGKILL');
    const signal = await brokerExit;
    broker = LiveUpdateBroker.start(brokerOptions);
    record('broker killed with SIGKILL between barrier and reboot, restarted; clients adopt back', {
      answer,
      rebooting,
      prepared: { a: a.events.filter((e) => e.event === 'prepare').length, b: b.events.filter((e) => e.event === 'prepare').length },
      signal,
      a: await a.nth('adopted', 3),
      b: await b.nth('adopted', 3),
      sessions: broker.sessions(),
    });
  }

  const d = client(1000, 'keep', 'doomed', 'D-data');
  await d.next('kept');
  d.child.kill('SIGKILL');
  await new Promise((r) => d.child.once('exit', r));
  record('a client killed before the kexec', { sessions: broker.sessions().filter((s) => s.name === 'doomed') });

  record('malformed messages', {
    notJson: await rawExchange('not json'),
    badOp: await rawExchange(JSON.stringify({ id: 1, op: 'steal' })),
    oversized: await rawExchange(Buffer.alloc(64 * 1024, 'x')),
    tooLongName: await rawExchange(JSON.stringify({ id: 2, op: 'create', name: 'n'.repeat(300) })),
    stillServing: await rawExchange(JSON.stringify({ id: 3, op: 'list' })),
  });

  const g = client(1000, 'keep', 'failing', 'G-data', '--fail-prepare');
  await g.next('kept');
  const h = client(1000, 'keep', 'grabbed', 'H-data');
  await h.next('kept');
  {
    using root = LiveUpdateClient.connect(SOCKET);
    const refusal = await root.requestKexec({ kernel: process.env.LIVEUPDATE_VM_KERNEL!, cmdline: nextStageCmdline(2), timeoutMs: 3000 }).then(
      () => ({ refused: false }),
      (err) => ({ refused: true, code: err.code, message: err.message, notReady: err.notReady }),
    );
    record('kexec with a client whose prepare handler throws', {
      ...refusal,
      gPid: g.child.pid,
      warning: await g.next('warning'),
      gStillRunning: g.child.exitCode === null && g.child.signalCode === null,
    });
  }
  g.child.kill('SIGKILL'); // its session stays with the broker, like any dead client's
  await new Promise((r) => g.child.once('exit', r));

  const f = client(1000, 'keep', 'noack', 'F-data', '--no-ack');
  await f.next('kept');
  const root = LiveUpdateClient.connect(SOCKET);
  const kernel = process.env.LIVEUPDATE_VM_KERNEL!;
  const cmdline = nextStageCmdline(2);
  try {
    await root.requestKexec({ kernel, cmdline, timeoutMs: 3000 });
    record('kexec with a client that never acknowledges', { refused: false });
  } catch (err) {
    record('kexec with a client that never acknowledges', { refused: true, code: (err as { code?: string }).code, notReady: (err as { notReady?: unknown }).notReady, fPid: f.child.pid });
  }

  const e = client(1001, 'keep', 'late', 'E-data');
  record('a client that connects late', await e.next('kept'));
  record('forced live update', { sessions: broker.sessions() });
  await root.requestKexec({ kernel, cmdline, force: true, timeoutMs: 3000 });
  await new Promise(() => {}); // the broker reboots the machine
} else {
  const broker = LiveUpdateBroker.start(brokerOptions);
  record('new broker found the record', { sessions: broker.sessions() });

  // A client killed after asking for its session and before reading the
  // reply: the fd dies in its socket's queue, the broker's reference does not.
  const handing = logged(/^handing "grabbed" to pid \d+/);
  const grabber = client(1000, 'grab', 'grabbed');
  await grabber.next('sent');
  await handing;
  const wentAway = logged(/went away before it had "grabbed"/);
  grabber.child.kill('SIGKILL');
  await wentAway;
  record('a client killed between its retrieve and the reply', {
    state: broker.sessions().find((x) => x.name === 'grabbed')?.state,
    secondClient: await client(1000, 'check', 'grabbed', 'H-data').next('checked').catch((err) => ({ error: String(err) })),
  });

  const results: Record<string, unknown> = {};
  for (const [key, uid, name, data] of [
    ['a', 1000, 'ram', 'A-data'],
    ['b', 1001, 'ram', 'B-data'],
    ['killedBeforeKexec', 1000, 'doomed', 'D-data'],
    ['late', 1001, 'late', 'E-data'],
    ['neverAcked', 1000, 'noack', 'F-data'],
    ['prepareFailed', 1000, 'failing', 'G-data'],
  ] as const) {
    results[key] = await client(uid, 'check', name, data).next('checked').catch((err) => ({ error: String(err) }));
  }
  record('each client gets its own session back', results);
  record("another uid's names are out of reach", {
    bAsksForDoomed: await client(1001, 'try', 'doomed').next('failed'),
    aAsksForLate: await client(1000, 'try', 'late').next('failed'),
    aAsksAgain: await client(1000, 'try', 'ram').next('failed'),
  });
  record('outsiders are still refused', await client(1002, 'keep', 'x', 'y').next('refused'));
  record('every session was handed out', { sessions: broker.sessions() });
  broker.close();
}
