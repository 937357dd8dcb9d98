// LiveUpdate.open[Sync](path, { retryBusyMs }): systemd's PID 1 holds the
// device for moments at unit starts and at shutdown, so EBUSY is retried
// for a while. The kernel is scripted (fake binding), /proc is a fake tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LiveUpdate } from '../../lib/index';
import { fakeBinding, nativeError } from './fake-binding';

const busy = () => { throw nativeError('EBUSY', 16, 'open'); };

function busyTimes(n: number) {
  let left = n;
  return fakeBinding({ open: () => (left-- > 0 ? busy() : 7) });
}

// A /proc where `pid` (named `command`) holds `device`.
function procWithHolder(device: string, pid: number, command: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-proc-'));
  fs.mkdirSync(path.join(root, String(pid), 'fd'), { recursive: true });
  fs.writeFileSync(path.join(root, String(pid), 'comm'), `${command}\n`);
  fs.symlinkSync(device, path.join(root, String(pid), 'fd', '9'));
  return root;
}

const device = '/nonexistent/liveupdate';

describe.each([
  ['openSync', (p: string, o: Parameters<typeof LiveUpdate.openSync>[1]) => Promise.resolve().then(() => LiveUpdate.openSync(p, o))],
  ['open', (p: string, o: Parameters<typeof LiveUpdate.open>[1]) => LiveUpdate.open(p, o)],
])('LiveUpdate.%s with retryBusyMs', (_name, open) => {
  test('succeeds once the holder lets go (busy twice, then free)', async () => {
    const { binding, calls } = busyTimes(2);
    const lu = await open(device, { binding, retryBusyMs: 10_000 });
    expect(lu.fd).toBe(7);
    expect(calls.filter((c) => c.call === 'open')).toHaveLength(3);
    lu.close();
  });

  test('gives up when the time is up, naming the holder and that PID 1 is systemd', async () => {
    const { binding, calls } = fakeBinding({ open: busy });
    const procRoot = procWithHolder(device, 1, 'systemd');
    const err = await open(device, { binding, retryBusyMs: 50, procRoot }).catch((e) => e);
    expect(err).toMatchObject({
      code: 'EBUSY',
      operation: 'LIVEUPDATE_OPEN',
      holder: { pid: 1, command: 'systemd' },
      retriedMs: 50,
      message: expect.stringMatching(/held by pid 1 \(systemd\); PID 1 \(systemd\) opens it briefly .*still busy after retrying for 50 ms/),
    });
    expect(calls.filter((c) => c.call === 'open').length).toBeGreaterThan(1);
    fs.rmSync(procRoot, { recursive: true });
  });

  test('names any other holder without the systemd note', async () => {
    const { binding } = fakeBinding({ open: busy });
    const procRoot = procWithHolder(device, 4242, 'luod');
    const err = await open(device, { binding, retryBusyMs: 5, procRoot }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EBUSY', holder: { pid: 4242, command: 'luod' } });
    expect(err.message).not.toMatch(/PID 1/);
    fs.rmSync(procRoot, { recursive: true });
  });

  test('without retryBusyMs, EBUSY fails at once; other errors are never retried', async () => {
    const once = fakeBinding({ open: busy });
    await expect(open(device, { binding: once.binding })).rejects.toMatchObject({ code: 'EBUSY' });
    expect(once.calls.filter((c) => c.call === 'open')).toHaveLength(1);
    const missing = fakeBinding({ open: () => { throw nativeError('ENOENT', 2, 'open'); } });
    await expect(open(device, { binding: missing.binding, retryBusyMs: 10_000 })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(missing.calls.filter((c) => c.call === 'open')).toHaveLength(1);
  });

  test.each([[-1], [Number.NaN], [Infinity]])('retryBusyMs %s is ERR_OUT_OF_RANGE', async (ms) => {
    await expect(open(device, { binding: fakeBinding().binding, retryBusyMs: ms })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });
});

test('the path stays optional', async () => {
  const { binding, calls } = fakeBinding();
  LiveUpdate.openSync(undefined, { binding }).close();
  (await LiveUpdate.open(undefined, { binding, retryBusyMs: 1 })).close();
  expect(calls.filter((c) => c.call === 'open').map((c) => c.args[0])).toEqual(['/dev/liveupdate', '/dev/liveupdate']);
});
