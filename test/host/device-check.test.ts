// LiveUpdate.open[Sync] checks that what it opened is the LUO device: any
// file opens, only the device answers a session's ioctl with EINVAL (the
// range check in luo_ioctl()). The real addon answers here for /dev/null and
// a regular file; the real kernel's answer for the device is in
// test/guest/cases.mts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LiveUpdate, LiveUpdateError } from '../../lib/index';
import { fakeBinding } from './fake-binding';

const fdCount = () => fs.readdirSync('/proc/self/fd').length;

describe.each([
  ['openSync', (p: string, o?: Parameters<typeof LiveUpdate.openSync>[1]) => Promise.resolve().then(() => LiveUpdate.openSync(p, o))],
  ['open', (p: string, o?: Parameters<typeof LiveUpdate.open>[1]) => LiveUpdate.open(p, o)],
])('LiveUpdate.%s on a file that is not the device', (_name, open) => {
  const regular = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-notdev-')), 'liveupdate');
  fs.writeFileSync(regular, '');

  test.each([['/dev/null'], [regular]])('%s is refused with ENOTTY, naming the path, and its fd is closed', async (file) => {
    const before = fdCount();
    const err = await open(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LiveUpdateError);
    expect(err).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl', operation: 'LIVEUPDATE_OPEN', path: file });
    expect((err as Error).message).toBe(`ENOTTY: ${file} is not the Live Update Orchestrator device: it does not answer LUO ioctls, ioctl '${file}'`);
    expect(fdCount()).toBe(before);
  });

  test('a session fd (it answers GET_NAME) is refused as not the device, and closed', async () => {
    const { binding, calls } = fakeBinding({ open: () => 42, LIVEUPDATE_SESSION_GET_NAME: () => ({ name: 'kept' }) });
    await expect(open('/proc/self/fd/9', { binding })).rejects.toMatchObject({ code: 'ERR_LIVEUPDATE_NOT_DEVICE', path: '/proc/self/fd/9' });
    expect(calls.map((c) => c.call)).toEqual(['open', 'LIVEUPDATE_SESSION_GET_NAME', 'close']);
  });

  test('the device (GET_NAME is EINVAL) opens after one probe', async () => {
    const { binding, calls } = fakeBinding();
    const lu = await open('/dev/liveupdate', { binding });
    expect(calls.map((c) => c.call)).toEqual(['open', 'LIVEUPDATE_SESSION_GET_NAME']);
    lu.close();
  });
});
