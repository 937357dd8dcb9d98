// One test per guest case, so a failure on the real kernel names the case.
// The cases themselves are in test/guest/cases.mts.
import { describe, expect, inject, test } from 'vitest';
import { suite } from '../guest/cases.mjs';

const vm = inject('vm');

function explain(what: string): string {
  return `${what}\n(kernel ${vm.kernelVersion}; QEMU exit ${vm.exitCode}${vm.timedOut ? ', timed out' : ''}; console: ${vm.consoleLog})\n--- console tail ---\n${vm.consoleText.split('\n').slice(-60).join('\n')}`;
}

describe.each([1, 2])('on a real LUO kernel, stage %i', (stage) => {
  const cases = suite.stages.get(stage) ?? [];
  test.each(cases.map((c) => c.name))('%s', (name) => {
    const result = vm.results.find((r) => r.stage === stage && r.name === name);
    if (!result) {
      throw new Error(explain(stage === 2 ? 'the guest never ran this case: did the kexec into stage 2 happen?' : 'the guest never ran this case'));
    }
    if (!result.ok) throw new Error(`guest case failed${result.code ? ` (${result.code})` : ''}:\n${result.error}`);
  });
});

test('the guest came back from the kexec in a new kernel and ran every case', () => {
  const expected = [...suite.stages.values()].reduce((n, cases) => n + cases.length, 0);
  expect(vm.results.length, explain('missing guest results')).toBe(expected);
  expect(vm.timedOut).toBe(false);
});
