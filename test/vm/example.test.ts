// The README's example, run as written on a real LUO kernel across a kexec.
import { expect, inject, test } from 'vitest';

const example = inject('example');

test('examples/keep-guest-ram.mjs gets its guest RAM back after a real live update', () => {
  const lines = example.consoleText.split('\n');
  expect(lines.some((l) => l.startsWith('liveupdate-vm: stage 2 on ')), `no kexec into stage 2; console: ${example.consoleLog}`).toBe(true);
  expect(lines, example.consoleLog).toContain('guest RAM is back: "guest state written before the update"');
  expect(lines, example.consoleLog).toContain('liveupdate-vm: workload exited with status 0 in stage 2');
});
