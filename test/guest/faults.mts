// Faults that need the real kernel, for the VM tier. Exported, not yet
// wired into a stage (test/guest/cases.mts): each is a function of its own
// so it can be added to stage 1 (or run from a guest of its own) later.
// Their host-side halves are in test/host/faults.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { FdSocket, LiveUpdate, Memfd, kexec } from 'liveupdate';

type Coded = Error & { code?: string; operation?: string };

/** A memfd_create(MFD_HUGETLB), made by python3 (Memfd cannot make one) and sent over a socket. */
async function hugetlbMemfd(): Promise<Memfd> {
  const [mine, theirs] = FdSocket.pair();
  try {
    const py = 'import os, socket; s = socket.socket(fileno=3); s.setblocking(True); socket.send_fds(s, [b"h"], [os.memfd_create("huge", os.MFD_HUGETLB)])';
    const child = spawn('python3', ['-c', py], { stdio: ['ignore', 'inherit', 'inherit', theirs.fd] });
    theirs.close();
    const { fds } = await mine.receive();
    await new Promise((resolve) => child.on('exit', resolve));
    return Memfd.from(fds[0]!);
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
export async function hugetlbMemfdIsRefused(): Promise<void> {
  using lu = LiveUpdate.openSync();
  using session = lu.createSessionSync('fault-hugetlb');
  using huge = await hugetlbMemfd();
  assert.throws(
    () => session.preserveSync(huge, 1),
    (err: Coded) => ['ENOENT', 'EOPNOTSUPP'].includes(err.code!) && err.operation === 'LIVEUPDATE_SESSION_PRESERVE_FD',
  );
  using ordinary = Memfd.createSync('fault-ordinary');
  session.preserveSync(ordinary, 1); // same token, now for a file LUO can keep
}

/** Seal names the library does not know never reach fcntl; the memfd keeps what it had. */
export function unknownSealsAreRefused(): void {
  using m = Memfd.createSync('fault-seals');
  m.addSealsSync(['grow']);
  assert.throws(() => m.addSealsSync(['shrink', 'hugetlb' as never]), (err: Coded) => err.code === 'ERR_INVALID_ARG_VALUE');
  assert.deepEqual(m.getSealsSync(), ['grow']);
}

/**
 * A live update with no kernel loaded: reboot(LINUX_REBOOT_CMD_KEXEC) is
 * EINVAL and the machine stays up. Unloads first, so it must not run after
 * the stage has loaded the kernel it means to kexec into.
 */
export function kexecWithNothingLoaded(): void {
  kexec.unloadSync();
  assert.throws(() => kexec.rebootSync(), (err: Coded) => err.code === 'EINVAL' && err.operation === 'REBOOT_KEXEC');
}
