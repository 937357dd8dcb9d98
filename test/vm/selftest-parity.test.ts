// The kernel's own LUO selftests (C, built from the same kernel source) and
// this library's port of them, run in the same guest across the same kexec:
// every upstream case must be covered, and both sides must agree.
import { describe, expect, inject, test } from 'vitest';
import { deviceCases, kexecPrograms } from '../../lib/selftest/index';

const parity = inject('parity');
const find = (suite: 'c' | 'js', stage: number, name: string) => parity.lines.find((l) => l.suite === suite && l.stage === stage && l.name === name);
const context = () => `console: ${parity.consoleLog}\n${parity.consoleText.split('\n').slice(-40).join('\n')}`;

test('the port covers every device case the kernel has', () => {
  const upstream = parity.lines.filter((l) => l.suite === 'c' && l.stage === 0).map((l) => l.name).sort();
  expect(upstream.length, context()).toBe(15);
  expect(deviceCases.map((c) => c.name).sort()).toEqual(upstream);
});

describe.each([
  ...deviceCases.map((c) => [0, c.name] as const),
  ...kexecPrograms.flatMap((p) => [[1, p.name] as const, [2, p.name] as const]),
])('stage %i: %s', (stage, name) => {
  test('passes in C (upstream) and in the port', () => {
    const c = find('c', stage, name);
    const js = find('js', stage, name);
    expect(c, `the C selftest did not report this case\n${context()}`).toBeDefined();
    expect(js, `the port did not report this case\n${context()}`).toBeDefined();
    if (c!.ok !== js!.ok) {
      throw new Error(`C and the port disagree: C ${c!.ok ? 'passed' : 'failed'}, port ${js!.ok ? 'passed' : 'failed'}\nC: ${c!.detail}\nport: ${js!.detail}`);
    }
    expect(c!.ok, `both failed\nC: ${c!.detail}\nport: ${js!.detail}`).toBe(true);
  });
});
