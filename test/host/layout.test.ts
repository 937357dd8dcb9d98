// The structs compiled into the addon match the kernel's uAPI
// (include/uapi/linux/liveupdate.h, Linux 7.2+) byte for byte.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultBinding } from '../../lib/binding';

const layout = defaultBinding().ioctlLayout;

describe('ioctl structs', () => {
  test.each([
    ['LIVEUPDATE_IOCTL_CREATE_SESSION', 0xba00, 72],
    ['LIVEUPDATE_IOCTL_RETRIEVE_SESSION', 0xba01, 72],
    ['LIVEUPDATE_SESSION_PRESERVE_FD', 0xba40, 16],
    ['LIVEUPDATE_SESSION_RETRIEVE_FD', 0xba41, 16],
    ['LIVEUPDATE_SESSION_FINISH', 0xba42, 8],
    ['LIVEUPDATE_SESSION_GET_NAME', 0xba43, 72],
  ] as const)('%s is _IO(0xBA, …) = %i with a %i-byte struct', (op, request, size) => {
    expect(layout[op].request).toBe(request);
    expect(layout[op].size).toBe(size);
  });

  test('fields sit where the kernel reads and writes them', () => {
    expect(layout).toMatchObject({
      LIVEUPDATE_IOCTL_CREATE_SESSION: { fd: { offset: 4, direction: 'out' }, name: { offset: 8, direction: 'in' } },
      LIVEUPDATE_IOCTL_RETRIEVE_SESSION: { fd: { offset: 4, direction: 'out' }, name: { offset: 8, direction: 'in' } },
      LIVEUPDATE_SESSION_PRESERVE_FD: { fd: { offset: 4, direction: 'in' }, token: { offset: 8, direction: 'in' } },
      LIVEUPDATE_SESSION_RETRIEVE_FD: { fd: { offset: 4, direction: 'out' }, token: { offset: 8, direction: 'in' } },
      LIVEUPDATE_SESSION_GET_NAME: { name: { offset: 8, direction: 'out' } },
    });
    expect(layout.LIVEUPDATE_SESSION_FINISH).not.toHaveProperty('fd');
  });

  test('each operation is called by its place in the table', () => {
    const indices = Object.values(layout).map((l) => l.index).sort();
    expect(indices).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('there is exactly one table entry per uAPI ioctl', () => {
    expect(Object.keys(layout).sort()).toEqual([
      'LIVEUPDATE_IOCTL_CREATE_SESSION',
      'LIVEUPDATE_IOCTL_RETRIEVE_SESSION',
      'LIVEUPDATE_SESSION_FINISH',
      'LIVEUPDATE_SESSION_GET_NAME',
      'LIVEUPDATE_SESSION_PRESERVE_FD',
      'LIVEUPDATE_SESSION_RETRIEVE_FD',
    ]);
  });
});

describe('the native layer never aborts on bad input', () => {
  const b = defaultBinding();
  test.each([
    ['a string fd', () => b.ioctlSync('3' as never, layout.LIVEUPDATE_SESSION_FINISH.index)],
    ['an unknown operation', () => b.ioctlSync(0, 99)],
    ['missing arguments', () => (b.ioctlSync as (...a: unknown[]) => unknown)()],
    ['a negative number token', () => b.ioctlSync(0, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, 1, -1)],
    ['a fractional number token', () => b.ioctlSync(0, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, 1, 1.5)],
    ['a number token above 2^53', () => b.ioctlSync(0, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, 1, 2 ** 53)],
    ['a string token', () => b.ioctlSync(0, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, 1, '1')],
    ['a token above 2^64', () => b.ioctlSync(0, layout.LIVEUPDATE_SESSION_PRESERVE_FD.index, 1, 1n << 64n)],
    ['a 64-byte name', () => b.ioctlSync(0, layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index, 'x'.repeat(64))],
    ['a name with NUL', () => b.ioctlSync(0, layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index, 'a\0b')],
    ['a path with NUL', () => b.openSync('/dev/\0x', 2)],
  ])('%s throws a JS error', (_, call) => {
    expect(call).toThrow(/must|unknown/);
  });
});

describe('session names at the 63-byte limit, counted in UTF-8 bytes by the native layer', () => {
  const b = defaultBinding();
  const create = (name: unknown) => () => b.ioctlSync(nullFd, layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index, name as string);
  let nullFd: number;
  beforeAll(() => {
    nullFd = fs.openSync('/dev/null', 'r');
  });
  afterAll(() => fs.closeSync(nullFd));

  // /dev/null answers every ioctl ENOTTY: a name that gets that far was accepted.
  test.each([
    ['63 ASCII bytes', 'x'.repeat(63)],
    ['63 bytes ending in a 2-byte character', `${'x'.repeat(61)}é`],
    ['63 bytes ending in a 4-byte character', `${'x'.repeat(59)}😀`],
    ['63 bytes of 2-byte characters and one ASCII', `${'é'.repeat(31)}x`],
    ['1 byte', 'x'],
  ])('%s reaches the kernel', (_, name) => {
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(create(name)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
  });

  // The copy into the 64-byte field stops before a character that does not
  // fit, so these come back shorter than 63 bytes: only measuring tells.
  test.each([
    ['64 ASCII bytes', 'x'.repeat(64)],
    ['64 bytes, a 2-byte character cut by the limit', `${'x'.repeat(62)}é`],
    ['64 bytes, a 4-byte character cut by the limit', `${'x'.repeat(60)}😀`],
    ['64 bytes of 4-byte characters', '😀'.repeat(16)],
    ['64 bytes of 2-byte characters', 'é'.repeat(32)],
    ['empty', ''],
    ['a NUL in its last bytes', `${'x'.repeat(60)}\0y`],
  ])('%s is refused before the ioctl', (_, name) => {
    expect(create(name)).toThrow(/name must be 1\.\.63 bytes without NUL/);
  });

  test('a name that is not a string is refused', () => {
    expect(create(42)).toThrow(/name must be a string/);
    expect(create(undefined)).toThrow(/name must be a string/);
  });
});
