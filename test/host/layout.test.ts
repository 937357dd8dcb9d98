// The structs compiled into the addon match the kernel's uAPI
// (include/uapi/linux/liveupdate.h, Linux 7.2+) byte for byte.
import { describe, expect, test } from 'vitest';
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
