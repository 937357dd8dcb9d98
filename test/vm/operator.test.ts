// An operator's live update on a real LUO kernel, only through the
// `liveupdate` command: selftest stage 1 hands its sessions to a holder
// process and exits, kexec load/exec perform the live update, selftest
// stage 2 takes everything back in the new kernel.
import { describe, expect, inject, test } from 'vitest';
import { deviceCases, kexecPrograms } from '../../lib/selftest/index';

const run = inject('operator');
const step = (stage: number, ...args: string[]) => {
  const s = run.steps.find((x) => x.stage === stage && x.args.join(' ').startsWith(args.join(' ')));
  if (!s) throw new Error(`\`liveupdate ${args.join(' ')}\` never ran in stage ${stage}; console: ${run.consoleLog}\n${run.consoleText.split('\n').slice(-30).join('\n')}`);
  return s;
};
const show = (s: { status: number | null; stdout: string; stderr: string }) => `exit ${s.status}\n${s.stdout}\n${s.stderr}`;

describe('stage 1', () => {
  test('`selftest --stage 1` passes, leaves a holder process and says to kexec', () => {
    const s = step(1, 'selftest');
    expect(s.status, show(s)).toBe(0);
    expect(s.stdout).toContain(`stage 1: ${deviceCases.length + kexecPrograms.length} passed, 0 failed`);
    expect(s.stdout).toMatch(/process \d+ holds \d+ sessions\. Now live-update this machine/);
  });

  test('`sessions` shows the holder with the selftest sessions after selftest exited', () => {
    const s = step(1, 'sessions');
    const pids = new Set((JSON.parse(s.stdout) as Array<{ pid: number; name: string }>).map((x) => x.pid));
    const holder = Number(/process (\d+) holds/.exec(step(1, 'selftest').stdout)?.[1]);
    expect([...pids]).toEqual([holder]);
    expect(JSON.parse(s.stdout)).toHaveLength(2010);
  });

  test('`kexec exec` before anything is loaded is refused with exit 3', () => {
    const s = run.steps.filter((x) => x.stage === 1 && x.args[0] === 'kexec' && x.args[1] === 'exec')[0]!;
    expect(s.status, show(s)).toBe(3);
    expect(s.stderr).toBe('liveupdate kexec: no kernel is loaded: run `liveupdate kexec load --kernel FILE` first\n');
  });

  test('`kexec load` loads the kernel with the given command line', () => {
    const s = step(1, 'kexec', 'load');
    expect(s.status, show(s)).toBe(0);
    expect(s.stdout).toMatch(/^command line: .*liveupdate=on.*liveupdate_vm_stage=2$/m);
    expect(s.stderr).toBe('');
  });

  test('`status` sees the device free again and LUO usable', () => {
    const s = step(1, 'status');
    expect(s.status, show(s)).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ device: { present: true, holders: [] }, problems: [] });
  });
});

describe('stage 2, after `kexec exec --yes`', () => {
  test('`selftest --stage 2 --tap` takes every program back and exits 0', () => {
    const s = step(2, 'selftest');
    expect(s.status, show(s)).toBe(0);
    expect(s.stdout.split('\n').filter((l) => l.startsWith('ok '))).toHaveLength(kexecPrograms.length);
    expect(s.stdout).toContain('# 4 passed, 0 failed');
  });

  test('no session is left held afterwards', () => {
    expect(JSON.parse(step(2, 'sessions').stdout)).toEqual([]);
  });
});
