// Faults that need the real kernel, run in stage 1 of the VM tier
// (registered in test/guest/cases.mts, one host-side test each through
// test/vm/kernel.test.ts). Their host-side halves are in
// test/host/faults.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { FdSocket, LiveUpdate, Memfd, kexec } from 'liveupdate';
import type { FdLimitReport } from './fd-limit.mjs';

type Coded = Error & { code?: string; operation?: string };

const dist = new URL('../../dist/index.js', import.meta.url).pathname;

/**
 * A memfd_create(MFD_HUGETLB), made by python3 (Memfd cannot make one) and
 * sent over a socket. If python3 fails (no hugetlbfs in this kernel), its
 * exit ends the wait: a receive alone would wait forever for a message
 * that never comes.
 */
async function hugetlbMemfd(): Promise<Memfd> {
  const [mine, theirs] = FdSocket.pair();
  try {
    const py = 'import os, socket; s = socket.socket(fileno=3); s.setblocking(True); socket.send_fds(s, [b"h"], [os.memfd_create("huge", os.MFD_HUGETLB)])';
    const child = spawn('python3', ['-c', py], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
    theirs.close();
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const got = await Promise.race([mine.receive(), exited.then((code) => ({ exitedFirst: code }))]);
    if ('exitedFirst' in got) throw new Error(`python3 exited (${got.exitedFirst}) before it sent a hugetlb memfd`);
    await exited;
    return Memfd.from(got.fds[0]!);
  } finally {
    mine.close();
  }
}

/**
 * LUO preserves memfds on shmem, not hugetlbfs: preserving a hugetlb memfd
 * is refused by the kernel (ENOENT: no handler for the file; EOPNOTSUPP on
 * kernels whose memfd handler checks the backing itself), the session keeps
 * working, and the token stays free.
 */
export async function hugetlbMemfdIsRefused(): Promise<{ code: string }> {
  using lu = LiveUpdate.openSync();
  using session = lu.createSessionSync('fault-hugetlb');
  using huge = await hugetlbMemfd();
  assert.match(fs.readlinkSync(`/proc/self/fd/${huge.fd}`), /^\/memfd:huge/);
  let code = '';
  assert.throws(
    () => session.preserveSync(huge, 1),
    (err: Coded) => {
      code = err.code!;
      return ['ENOENT', 'EOPNOTSUPP'].includes(err.code!) && err.operation === 'LIVEUPDATE_SESSION_PRESERVE_FD';
    },
  );
  using ordinary = Memfd.createSync('fault-ordinary');
  session.preserveSync(ordinary, 1); // same token, now for a file LUO can keep
  return { code };
}

/** Seal names the library does not know never reach fcntl; the memfd keeps what it had. */
export function unknownSealsAreRefused(): void {
  using m = Memfd.createSync('fault-seals');
  m.addSealsSync(['grow']);
  for (const bad of ['hugetlb', 'F_SEAL_WRITE', 'WRITE', '', 'write ']) {
    assert.throws(() => m.addSealsSync(['shrink', bad as never]), (err: Coded) => err.code === 'ERR_INVALID_ARG_VALUE');
  }
  assert.deepEqual(m.getSealsSync(), ['grow']);
}

/**
 * A live update with no kernel loaded: reboot(LINUX_REBOOT_CMD_KEXEC) is
 * EINVAL, named as REBOOT_KEXEC, in both forms; this process carries on and
 * the machine did not reboot (same boot id). Unloads first, so it must not
 * run after the stage has loaded the kernel it means to kexec into.
 */
export async function kexecWithNothingLoaded(): Promise<void> {
  const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8');
  kexec.unloadSync();
  await kexec.unload(); // unloading nothing is not an error
  assert.equal(fs.readFileSync('/sys/kernel/kexec_loaded', 'utf8').trim(), '0');
  assert.throws(
    () => kexec.rebootSync(),
    (err: Coded) => err.code === 'EINVAL' && err.operation === 'REBOOT_KEXEC' && /no kernel is loaded/.test(err.message),
  );
  await assert.rejects(kexec.reboot(), (err: Coded) => err.code === 'EINVAL' && err.operation === 'REBOOT_KEXEC');
  assert.equal(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'), bootId);
}

/** Resolves with the first line a child prints, or rejects if it exits first. */
function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before it printed a line: ${out}`)));
  });
}

/**
 * The process holding the device and a session is killed with SIGKILL: the
 * kernel closes its fds, so the device can be opened again and a session
 * of the same name created (the dead holder's outgoing session is gone
 * with its fd, files unpreserved).
 */
export async function sessionHolderKilled(): Promise<{ holderPid: number }> {
  const NAME = 'fault-killed-holder';
  const script = `
    const { LiveUpdate, Memfd } = require(${JSON.stringify(dist)});
    const lu = LiveUpdate.openSync();
    const s = lu.createSessionSync(${JSON.stringify(NAME)});
    const m = Memfd.createSync('held');
    s.preserveSync(m, 1);
    console.log('holding');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  try {
    assert.equal(await firstLine(child), 'holding');
    // It really holds the device: we are refused, with its pid named.
    assert.throws(() => LiveUpdate.openSync(), (err: Coded & { holder?: { pid: number } }) => err.code === 'EBUSY' && err.holder?.pid === child.pid);
  } finally {
    child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL');
  using lu = LiveUpdate.openSync();
  using session = lu.createSessionSync(NAME);
  using m = Memfd.createSync('new-holder');
  session.preserveSync(m, 1); // the dead holder's token 1 went with its session
  return { holderPid: child.pid! };
}

/**
 * RLIMIT_NOFILE exhausted mid-way, on the real device: a child under
 * `ulimit -n` (test/guest/fd-limit.mts) fills its fd table, then tries each
 * call that needs a new fd. Each fails with EMFILE naming its operation;
 * calls that need no fd still work; once the filler is gone, the fd count
 * is what it was and the names and tokens of the failed calls are free
 * (nothing half-made was left in the kernel).
 */
export async function fdLimitExhausted(): Promise<FdLimitReport> {
  const entry = new URL('fd-limit.mjs', import.meta.url).pathname;
  const child = spawn('sh', ['-c', 'ulimit -n 64 && exec "$0" "$1"', process.execPath, entry], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `the child under ulimit -n 64 failed: ${out}`);
  const report = JSON.parse(out) as FdLimitReport;
  const emfile = (operation: string) => ({ code: 'EMFILE', operation, prefixed: true });
  assert.deepEqual(report.attempts, {
    'Memfd.createSync': emfile('MEMFD_CREATE'),
    'Memfd.create': emfile('MEMFD_CREATE'),
    'FdSocket.pair': emfile('SOCKETPAIR'),
    'lu.createSessionSync': emfile('LIVEUPDATE_IOCTL_CREATE_SESSION'),
    'lu.createSession': emfile('LIVEUPDATE_IOCTL_CREATE_SESSION'),
    'session.preserve (its copy of the file)': emfile('LIVEUPDATE_SESSION_PRESERVE_FD'),
    'session.preserveSync (needs no fd)': { ok: true },
    'fdSocket.send with an fd': emfile('SENDMSG'),
    'LiveUpdate.openSync': emfile('LIVEUPDATE_OPEN'),
  });
  assert.equal(report.leaked, 0, 'fds left open after the filler was closed');
  assert.equal(report.afterwards, 'the failed names and tokens are free');
  return report;
}
