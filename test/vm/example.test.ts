// The README's example, run as written on a real LUO kernel across a kexec.
import { expect, inject, test } from 'vitest';

const example = inject('example');

test('examples/keep-guest-ram.mjs gets its guest RAM back after a real live update', () => {
  const lines = example.consoleText.split('\n');
  expect(lines, example.consoleLog).toContain('stage 1: guest RAM preserved, live-updating the kernel');
  expect(lines, example.consoleLog).toContain('stage 2: guest RAM is back (67108864 bytes): "guest state written before the update"');
  expect(lines, example.consoleLog).toContain('liveupdate-vm: workload exited with status 0 in stage 2');
});
