// The README's "see it work" command, `liveupdate vm run examples/keep-guest-ram.mjs`,
// run as a user would: it boots the LUO kernel and carries guest RAM across a real kexec.
import { expect, inject, test } from 'vitest';

const example = inject('example');

test('`liveupdate vm run examples/keep-guest-ram.mjs` gets the guest RAM back after a real live update', () => {
  const lines = example.stdout.split('\n');
  const context = `exit ${example.status}\n--- stdout ---\n${example.stdout}\n--- stderr ---\n${example.stderr}`;
  expect(lines.some((l) => l.startsWith('liveupdate-vm: stage 2 on ')), context).toBe(true);
  expect(lines, context).toContain('guest RAM is back: "guest state written before the update"');
  expect(example.status, context).toBe(0);
});

test('kernel messages stay out of the output unless --verbose', () => {
  expect(example.stdout).not.toMatch(/^\[\s*\d+\.\d+\]/m);
});

test('`liveupdate vm run examples/broker-live-update.mjs`: a VMM keeps its guest RAM through the broker', () => {
  const run = inject('brokerExample');
  const context = `exit ${run.status}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
  expect(run.stdout, context).toContain('vmm: live update coming, vCPUs paused');
  expect(run.stdout, context).toMatch(/^vmm: guest RAM is back: "guest booted by vmm pid \d+"$/m);
  expect(run.status, context).toBe(0);
});
