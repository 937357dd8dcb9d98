// The guest fuzz (test/guest/fuzz.mts) on the real device: its pass or
// failure is a test of its own in kernel.test.ts; this checks it ran at
// the scale issue 9 asks for, and says how many calls and which seed.
import { expect, inject, test } from 'vitest';
import { FUZZ_RUNS } from '../guest/cases.mjs';
import type { GuestFuzzReport } from '../guest/fuzz.mjs';

const vm = inject('vm');

test('the guest fuzz made at least 1000 calls of the public API on the real device', () => {
  const result = vm.results.find((r) => r.stage === 1 && r.name.startsWith('fuzz: '));
  if (!result) throw new Error(`the guest never ran the fuzz; console: ${vm.consoleLog}`);
  expect(result.ok, result.error).toBe(true);
  const report = result.detail as GuestFuzzReport;
  console.log(`guest fuzz: ${report.calls} calls in ${report.sequences} sequences (seed ${report.seed}) in ${(result.ms / 1000).toFixed(1)} s emulated`);
  expect(report.sequences).toBe(FUZZ_RUNS);
  expect(report.calls).toBeGreaterThanOrEqual(1000);
  expect(Number.isInteger(report.seed)).toBe(true);
});
