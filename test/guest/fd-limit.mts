// Run by fdLimitExhausted (test/guest/faults.mts) under `ulimit -n 64`, in
// the guest, on the real device: fills this process's fd table, tries each
// call that needs a new fd, frees the table and prints what it saw as one
// JSON object (FdLimitReport) on stdout.
import * as fs from 'node:fs';
import { FdSocket, LiveUpdate, Memfd } from 'liveupdate';

export interface FdLimitReport {
  /** Per call: ok, or its code and operation (and whether the message starts with the code). */
  attempts: Record<string, { ok: true } | { code?: string; operation?: string; prefixed: boolean }>;
  /** Open fds after the filler was closed, minus before it was opened. */
  leaked: number;
  afterwards: string;
}

const count = () => fs.readdirSync('/proc/self/fd').length;
const HELD = 'fault-emfile-held';
const NEW = 'fault-emfile-new';

let lu = LiveUpdate.openSync();
const session = lu.createSessionSync(HELD);
const memfd = Memfd.createSync('kept');
const [a, b] = FdSocket.pair();
const before = count();

const filler: number[] = [];
/** Takes every free fd number (again, after a close freed one). */
const fill = () => {
  try {
    for (;;) filler.push(fs.openSync('/dev/null', 'r'));
  } catch (err) {
    if ((err as { code?: string }).code !== 'EMFILE') throw err;
  }
};

const attempts: FdLimitReport['attempts'] = {};
async function attempt(name: string, fn: () => unknown): Promise<void> {
  try {
    const made = await fn();
    attempts[name] = { ok: true };
    // Anything made by mistake is closed, so the leak count stays honest.
    for (const m of ([] as unknown[]).concat(made)) (m as { close?: () => void } | undefined)?.close?.();
  } catch (err) {
    const e = err as { code?: string; operation?: string; message: string };
    attempts[name] = { code: e.code, operation: e.operation, prefixed: e.message.startsWith(`${e.code}: `) };
  }
}

fill();
await attempt('Memfd.createSync', () => Memfd.createSync('m'));
await attempt('Memfd.create', () => Memfd.create('m'));
await attempt('FdSocket.pair', () => FdSocket.pair());
await attempt('lu.createSessionSync', () => lu.createSessionSync(NEW));
await attempt('lu.createSession', () => lu.createSession(NEW));
await attempt('session.preserve (its copy of the file)', () => session.preserve(memfd, 1));
await attempt('session.preserveSync (needs no fd)', () => session.preserveSync(memfd, 2));
await attempt('fdSocket.send with an fd', () => a.send('x', [memfd]));
lu.close();
fill(); // the device's number is free now: take it too
await attempt('LiveUpdate.openSync', () => LiveUpdate.openSync());

for (const fd of filler) fs.closeSync(fd);
lu = LiveUpdate.openSync();
const leaked = count() - before;

// A create that failed left no session of that name in the kernel, and a
// preserve that failed left its token free.
lu.createSessionSync(NEW).close();
using other = Memfd.createSync('other');
session.preserveSync(other, 1);

a.close();
b.close();
memfd.close();
session.close();
lu.close();
const report: FdLimitReport = { attempts, leaked, afterwards: 'the failed names and tokens are free' };
process.stdout.write(JSON.stringify(report));
