// `liveupdate vm selftest`: the ported selftests through the command a user
// runs, stage 1, a real kexec, stage 2, all inside one QEMU run.
import { expect, inject, test } from 'vitest';
import { deviceCases, kexecPrograms } from '../../lib/selftest/index';

const run = inject('vmSelftest');
const context = () => `exit ${run.status}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;

test('`liveupdate vm selftest --tap` passes every case in both stages and exits 0', () => {
  const oks = run.stdout.split('\n').filter((l) => /^ok \d+ - /.test(l));
  const notOks = run.stdout.split('\n').filter((l) => /^not ok \d+ - /.test(l));
  expect(notOks, context()).toEqual([]);
  expect(oks.length, context()).toBe(deviceCases.length + 2 * kexecPrograms.length);
  expect(run.stdout, context()).toMatch(/^# holding \d+ sessions through a live update into stage 2$/m); // a TAP comment
  expect(run.stdout, context()).toMatch(/^# 4 passed, 0 failed$/m);
  expect(run.status, context()).toBe(0);
});
