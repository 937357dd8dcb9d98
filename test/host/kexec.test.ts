// The live-update trigger, against a fake system-call layer: which files
// reach kexec_file_load, with which flags and command line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createKexec } from '../../lib/kexec';
import { liveUpdateToNextStage, nextStageCmdline } from '../../lib/vm/index';
import { fakeBinding } from './fake-binding';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-kexec-'));
const kernel = path.join(dir, 'bzImage');
const initrd = path.join(dir, 'initrd');
fs.writeFileSync(kernel, 'kernel');
fs.writeFileSync(initrd, 'initrd');
const openFds = () => fs.readdirSync('/proc/self/fd').length;

describe('kexec.loadSync', () => {
  test('passes the kernel fd, no initrd and the running command line by default', () => {
    const { binding, calls } = fakeBinding();
    const k = createKexec(() => binding, () => 'console=ttyS0 liveupdate=on');
    const before = openFds();
    k.loadSync({ kernel });
    const [kernelFd, initrdFd, cmdline, flags] = calls[0]!.args as [number, number, string, number];
    expect(kernelFd).toBeGreaterThan(2);
    expect(initrdFd).toBe(-1);
    expect(cmdline).toBe('console=ttyS0 liveupdate=on');
    expect(flags).toBe(binding.constants.KEXEC_FILE_NO_INITRAMFS);
    expect(openFds()).toBe(before); // both files closed again
  });

  test('with an initrd and an explicit command line', async () => {
    const { binding, calls } = fakeBinding();
    const k = createKexec(() => binding);
    await k.load({ kernel, initrd, cmdline: 'quiet' });
    const [, initrdFd, cmdline, flags] = calls[0]!.args as [number, number, string, number];
    expect(initrdFd).toBeGreaterThan(2);
    expect(cmdline).toBe('quiet');
    expect(flags).toBe(0);
  });

  test('a missing initrd closes the kernel file it already opened', () => {
    const { binding, calls } = fakeBinding();
    const before = openFds();
    expect(() => createKexec(() => binding).loadSync({ kernel, initrd: path.join(dir, 'missing') })).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(openFds()).toBe(before);
    expect(calls).toEqual([]);
  });

  test.each([
    ['no options', undefined, 'ERR_INVALID_ARG_TYPE'],
    ['a numeric kernel', { kernel: 3 }, 'ERR_INVALID_ARG_TYPE'],
    ['a command line with NUL', { kernel, cmdline: 'a\0b' }, 'ERR_INVALID_ARG_VALUE'],
  ])('%s is refused before any syscall', (_, options, code) => {
    const { binding, calls } = fakeBinding();
    expect(() => createKexec(() => binding).loadSync(options as never)).toThrow(expect.objectContaining({ code }));
    expect(calls).toEqual([]);
  });
});

test('unloadSync and unload ask for KEXEC_FILE_UNLOAD', async () => {
  const { binding, calls } = fakeBinding();
  createKexec(() => binding).unloadSync();
  await createKexec(() => binding).unload();
  const unload = { call: 'kexecFileLoad', args: [-1, -1, '', binding.constants.KEXEC_FILE_UNLOAD] };
  expect(calls).toEqual([unload, unload]);
});

test('rebootSync returns only by throwing, with the meaning of the errno', () => {
  const { binding } = fakeBinding();
  expect(() => createKexec(() => binding).rebootSync()).toThrow(
    expect.objectContaining({ code: 'EINVAL', syscall: 'reboot', operation: 'REBOOT_KEXEC', message: 'EINVAL: no kernel is loaded (call kexec.loadSync() first), or the kernel refused the live update, reboot REBOOT_KEXEC' }),
  );
});

test('reboot() rejects the same way', async () => {
  const { binding } = fakeBinding();
  await expect(createKexec(() => binding).reboot()).rejects.toMatchObject({ code: 'EINVAL', operation: 'REBOOT_KEXEC' });
});

describe('VM stages', () => {
  test('the next stage keeps the command line and moves the marker', () => {
    expect(nextStageCmdline(2, 'console=ttyS0 liveupdate_vm_stage=1 liveupdate=on')).toBe('console=ttyS0 liveupdate=on liveupdate_vm_stage=2');
  });

  test('liveUpdateToNextStage reloads the same kernel with the next stage and reboots', () => {
    const { binding, calls } = fakeBinding();
    const k = createKexec(() => binding, () => 'x liveupdate_vm_stage=1');
    const env = { LIVEUPDATE_VM_STAGE: '1', LIVEUPDATE_VM_KERNEL: kernel };
    expect(() => liveUpdateToNextStage({ kexec: k, env })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(calls.map((c) => c.call)).toEqual(['kexecFileLoad', 'rebootKexec']);
  });
});
