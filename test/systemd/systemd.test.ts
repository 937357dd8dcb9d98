// systemd 262 as PID 1 on the LUO kernel, across a real `systemctl kexec`:
// vmm.service (LUOSession=guest-ram) preserves 64 MiB of guest RAM in the
// session systemd made for it, live-update.service loads the kernel with
// `liveupdate kexec load` and runs `systemctl kexec`, and in the new kernel
// vmm.service gets its session back from systemd and the RAM out of it.
import { createHash } from 'node:crypto';
import { describe, expect, inject, test } from 'vitest';
import type { DriverRecord, VmmRecord } from './record.mjs';

const run = inject('systemd');
const context = () => `console: ${run.consoleLog} (QEMU exit ${run.exitCode}${run.timedOut ? ', killed at the timeout' : ''})\n${run.consoleTail}`;

function vmm(boot: number): VmmRecord {
  const r = run.records.find((x): x is VmmRecord => x.unit === 'vmm.service' && x.boot === boot);
  const failed = run.records.find((x) => x.unit === 'vmm.service' && !x.ok);
  if (!r) throw new Error(`vmm.service reported nothing for boot ${boot}${failed ? `; it failed: ${failed.error}` : ''}\n${context()}`);
  return r;
}
function driver(kexecCount: number): DriverRecord {
  const r = run.records.find((x): x is DriverRecord => x.unit === 'live-update.service' && x.kexecCount === kexecCount);
  if (!r) throw new Error(`live-update.service reported nothing with KExecCount ${kexecCount}; reports: ${JSON.stringify(run.records.filter((x) => x.unit === 'live-update.service'))}\n${context()}`);
  return r;
}
const show = (r: object) => `${JSON.stringify(r, null, 2)}\n${context()}`;

/**
 * The kernel session name systemd 262 gives `LUOSession=name` of `unit`: the
 * unit name's first 13 characters, '-', then 24 hex digits of
 * SHA-256(unit + '/' + name) with the v4-UUID bits set.
 */
function luoSessionName(unit: string, name: string): string {
  const h = createHash('sha256').update(`${unit}/${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return `${unit.slice(0, 13)}-${h.subarray(0, 12).toString('hex')}`;
}
const SESSION = luoSessionName('vmm.service', 'guest-ram');

test('the expected kernel session name follows systemd 262 (luo-demo.service/demo as seen in a VM)', () => {
  expect(luoSessionName('luo-demo.service', 'demo')).toBe('luo-demo.serv-f7b8a692c3ea413a9a50d592');
});

describe('boot 1', () => {
  test('vmm.service gets an outgoing session on fd 3 under LISTEN_FDNAMES=guest-ram, with the LUOSession= kernel name', () => {
    const r = vmm(1);
    expect(r.listen, show(r)).toMatchObject({ fds: '1', fdnames: 'guest-ram' });
    expect(r.session, show(r)).toEqual({ fd: 3, name: SESSION, direction: 'outgoing' });
  });

  test('vmm.service preserves 64 MiB of guest RAM under token 1 before READY=1', () => {
    const r = vmm(1);
    expect(r.ok, show(r)).toBe(true);
    expect(r.bytes).toBe(64 << 20);
    expect(run.marks['vmm ready'], context()).toBeDefined();
  });

  test('KExecCount is 0 and `liveupdate kexec load` loads the kernel', () => {
    const r = driver(0);
    const load = r.commands.find((c) => c.argv.includes('load'));
    expect(load?.status, show(r)).toBe(0);
    expect(load?.stdout).toMatch(/^command line: .*liveupdate=on/m);
    expect(r.ok, show(r)).toBe(true);
  });

  test('`systemctl --no-block kexec` is accepted', () => {
    const r = driver(0);
    expect(run.marks['systemctl kexec'], context()).toBeDefined();
    // The driver records a second, failed report only if the kexec did not start.
    expect(run.records.filter((x) => x.unit === 'live-update.service' && !x.ok), show(r)).toEqual([]);
  });
});

describe('boot 2, after `systemctl kexec`', () => {
  test('vmm.service gets the incoming session from systemd under the same FDNAME and kernel name', () => {
    const r = vmm(2);
    expect(r.listen, show(r)).toMatchObject({ fds: '1', fdnames: 'guest-ram' });
    expect(r.session, show(r)).toEqual({ fd: 3, name: SESSION, direction: 'incoming' });
  });

  test('the guest RAM comes back whole: same size and SHA-256 as written in boot 1', () => {
    const r = vmm(2);
    expect(r.bytes, show(r)).toBe(64 << 20);
    expect(r.sha256, show(r)).toBe(vmm(1).sha256);
    expect(r.ok, show(r)).toBe(true);
  });

  test('vmm.service FINISHes its session', () => {
    const r = vmm(2);
    expect(r.finished, show(r)).toBe(true);
  });

  test('the Manager says KExecCount 1', () => {
    const r = driver(1);
    expect(r.kexecCountProperty, show(r)).toBe('u 1');
  });

  test('time from `systemctl kexec` until vmm.service is back with its data (logged, not asserted)', () => {
    const { marks } = run;
    expect(marks['systemctl kexec'], context()).toBeDefined();
    expect(marks['vmm back with its data'], context()).toBeDefined();
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    console.log(
      `systemd ${run.systemdVersion} on kernel ${run.kernelVersion}, emulated: ` +
        `root filesystem ${s(run.rootfsMs)} (look-up, and build unless cached) + disk image ${s(run.imageMs)}; ` +
        `VM start -> vmm ready ${s(marks['vmm ready']!)}; ` +
        `systemctl kexec -> vmm back with its data ${s(marks['vmm back with its data']! - marks['systemctl kexec']!)}; ` +
        `whole run ${s(run.wallMs)}; ` +
        `vmm.service steps in ms since its start: boot 1 ${JSON.stringify(vmm(1).times)}, boot 2 ${JSON.stringify(vmm(2).times)}`,
    );
  });
});

test('the guest powers itself off afterwards (`systemctl poweroff`)', () => {
  expect(run.marks['powering off'], context()).toBeDefined();
  expect(run.timedOut, context()).toBe(false);
  expect(run.exitCode, context()).toBe(0);
});
