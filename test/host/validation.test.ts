// Bad input is refused with Node's error codes before any system call.
import { afterEach, describe, expect, test } from 'vitest';
import { FdSocket, LiveUpdate, Memfd, OwnedFd, Session } from '../../lib/index';
import { fakeBinding } from './fake-binding';

// Everything a test opens is closed after it, so no unclosed-object warnings.
const opened: Array<{ close(): void }> = [];
afterEach(() => opened.splice(0).forEach((o) => o.close()));
function track<T extends { close(): void }>(o: T): T {
  opened.push(o);
  return o;
}

function device() {
  const fake = fakeBinding();
  const lu = track(LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding }));
  fake.calls.length = 0;
  return { lu, calls: fake.calls, binding: fake.binding };
}

function outgoing() {
  const d = device();
  const session = track(d.lu.createSessionSync('s'));
  d.calls.length = 0;
  return { ...d, session };
}

describe('session names', () => {
  test.each([
    ['an empty name', '', 'ERR_INVALID_ARG_VALUE', /must not be empty/],
    ['a 64-byte name', 'x'.repeat(64), 'ERR_INVALID_ARG_VALUE', /at most 63 bytes in UTF-8 \(it is 64\)/],
    ['32 two-byte characters (64 bytes)', 'é'.repeat(32), 'ERR_INVALID_ARG_VALUE', /it is 64/],
    ['a name with a NUL', 'a\0b', 'ERR_INVALID_ARG_VALUE', /NUL/],
    ['a lone surrogate', 'a\ud800', 'ERR_INVALID_ARG_VALUE', /lone surrogate/],
    ['a number', 42, 'ERR_INVALID_ARG_TYPE', /must be of type string/],
    ['undefined', undefined, 'ERR_INVALID_ARG_TYPE', /Received undefined/],
  ])('%s is refused', (_, name, code, message) => {
    const { lu, calls } = device();
    expect(() => lu.createSessionSync(name as string)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    expect(() => lu.retrieveSessionSync(name as string)).toThrow(expect.objectContaining({ code }));
    expect(calls).toEqual([]);
  });

  test('the Promise forms reject the same way, without a syscall', async () => {
    const { lu, calls } = device();
    await expect(lu.createSession('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(lu.retrieveSession('x'.repeat(64))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(calls).toEqual([]);
  });

  test('63 bytes of UTF-8 reach the kernel intact', () => {
    const { lu, calls } = device();
    const name = `${'é'.repeat(31)}x`;
    expect(track(lu.createSessionSync(name)).name).toBe(name);
    expect(calls).toEqual([{ call: 'LIVEUPDATE_IOCTL_CREATE_SESSION', args: [expect.any(Number), { name }] }]);
  });
});

describe('tokens', () => {
  test.each([
    ['-1', -1, 'ERR_OUT_OF_RANGE'],
    ['1.5', 1.5, 'ERR_OUT_OF_RANGE'],
    ['2^53', 2 ** 53, 'ERR_OUT_OF_RANGE'],
    ['NaN', Number.NaN, 'ERR_OUT_OF_RANGE'],
    ['-1n', -1n, 'ERR_OUT_OF_RANGE'],
    ['2^64 as a bigint', 1n << 64n, 'ERR_OUT_OF_RANGE'],
    ['a string', '1', 'ERR_INVALID_ARG_TYPE'],
    ['null', null, 'ERR_INVALID_ARG_TYPE'],
  ])('%s is refused', (_, token, code) => {
    const { session, calls } = outgoing();
    expect(() => session.preserveSync(3, token as never)).toThrow(expect.objectContaining({ code }));
    expect(calls).toEqual([]);
  });

  test.each([
    ['0', 0, 0n],
    ['the largest safe integer', Number.MAX_SAFE_INTEGER, BigInt(Number.MAX_SAFE_INTEGER)],
    ['2^64 - 1', (1n << 64n) - 1n, (1n << 64n) - 1n],
  ])('%s reaches the kernel as a u64 without loss', (_, token, expected) => {
    const { session, calls } = outgoing();
    session.preserveSync(3, token);
    expect(calls).toEqual([{ call: 'LIVEUPDATE_SESSION_PRESERVE_FD', args: [session.fd, { fd: 3, token: expected }] }]);
  });
});

describe('file descriptors', () => {
  test.each([
    ['-1', -1, 'ERR_OUT_OF_RANGE'],
    ['1.5', 1.5, 'ERR_OUT_OF_RANGE'],
    ['2^31', 2 ** 31, 'ERR_OUT_OF_RANGE'],
    ['a string', '3', 'ERR_INVALID_ARG_TYPE'],
    ['an object with a bad fd', { fd: -2 }, 'ERR_OUT_OF_RANGE'],
    ['an object without fd', {}, 'ERR_INVALID_ARG_TYPE'],
  ])('%s is refused', (_, file, code) => {
    const { session, calls } = outgoing();
    expect(() => session.preserveSync(file as never, 1)).toThrow(expect.objectContaining({ code }));
    expect(calls).toEqual([]);
  });

  test('a closed OwnedFd is refused with ERR_CLOSED, never by number', () => {
    const { session, calls, binding } = outgoing();
    const file = new OwnedFd(7, { binding });
    file.close();
    calls.length = 0;
    expect(() => session.preserveSync(file, 1)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(calls).toEqual([]);
  });

  test('objects with an fd property are accepted (OwnedFd, Memfd, FileHandle-like)', () => {
    const { session, calls } = outgoing();
    session.preserveSync({ fd: 9 }, 1);
    expect(calls[0]!.args[1]).toEqual({ fd: 9, token: 1n });
  });
});

describe('session direction', () => {
  test('retrieve and finish on an outgoing session are refused before the syscall', async () => {
    const { session, calls } = outgoing();
    expect(() => session.retrieveSync(1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE', direction: 'outgoing', operation: 'LIVEUPDATE_SESSION_RETRIEVE_FD' }));
    expect(() => session.finishSync()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    await expect(session.finish()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    expect(calls).toEqual([]);
  });

  test('preserve on an incoming session is refused before the syscall', () => {
    const { lu, calls } = device();
    const session = track(lu.retrieveSessionSync('kept'));
    calls.length = 0;
    expect(session.direction).toBe('incoming');
    expect(() => session.preserveSync(3, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE', direction: 'incoming' }));
    expect(calls).toEqual([]);
  });

  test('a closed session refuses everything with ERR_SESSION_CLOSED', () => {
    const { session, calls } = outgoing();
    session.close();
    calls.length = 0;
    expect(() => session.preserveSync(3, 1)).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED', message: 'session "s" is closed' }));
    expect(() => session.getNameSync()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }));
    expect(calls).toEqual([]);
  });
});

describe('memfd options', () => {
  test.each([
    ['a negative size', { size: -1 }, 'ERR_OUT_OF_RANGE'],
    ['a fractional size', { size: 0.5 }, 'ERR_OUT_OF_RANGE'],
    ['a string size', { size: '4096' }, 'ERR_INVALID_ARG_TYPE'],
    ['a non-boolean allowSealing', { allowSealing: 1 }, 'ERR_INVALID_ARG_TYPE'],
  ])('%s is refused', (_, options, code) => {
    expect(() => Memfd.createSync('m', options as never)).toThrow(expect.objectContaining({ code }));
  });

  test('unknown seal names are refused', () => {
    using m = Memfd.createSync('m');
    expect(() => m.addSealsSync(['write', 'nope' as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/must be one of 'seal', 'shrink'/) }));
    expect(m.getSealsSync()).toEqual([]);
  });
});

test('a Session cannot be made from a non-fd', () => {
  expect(() => new Session('3' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
});

// Found by the argument fuzzing (test/host/fuzz-arguments.test.ts): these
// entry points took anything as options, and OwnedFd took any fd. A null
// crashed with a TypeError without a code; a non-object options made
// new Session() fall back to the real addon and probe a number it was never
// meant to touch; an OwnedFd of -1 or NaN failed only later, in close().
describe('options that are not objects, and fds that are not fds', () => {
  test.each([
    ['null', null],
    ['a number', 5],
    ['a string', ''],
  ])('%s as options is refused before any system call', (_, options) => {
    const fake = fakeBinding();
    const owned = track(new OwnedFd(42, { binding: fake.binding }));
    const refused = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/"options" argument must be of type object/) });
    expect(() => new OwnedFd(43, options as never)).toThrow(refused);
    expect(() => new Session(owned, options as never)).toThrow(refused);
    expect(() => Memfd.from(owned, options as never)).toThrow(refused);
    expect(() => FdSocket.pair(options as never)).toThrow(refused);
    expect(() => new FdSocket(owned, options as never)).toThrow(refused);
    expect(fake.calls).toEqual([]);
    expect(owned.closed).toBe(false);
  });

  test('a session direction other than incoming or outgoing is refused', () => {
    const fake = fakeBinding();
    expect(() => new Session(42, { binding: fake.binding, direction: 'sideways' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/options.direction/) }),
    );
    expect(fake.calls).toEqual([]);
  });

  test.each([
    ['-1', -1, 'ERR_OUT_OF_RANGE'],
    ['NaN', NaN, 'ERR_OUT_OF_RANGE'],
    ['1.5', 1.5, 'ERR_OUT_OF_RANGE'],
    ['2^31', 2 ** 31, 'ERR_OUT_OF_RANGE'],
    ['a string', '3', 'ERR_INVALID_ARG_TYPE'],
  ])('new OwnedFd(%s) is refused', (_, fd, code) => {
    const fake = fakeBinding();
    expect(() => new OwnedFd(fd as never, { binding: fake.binding })).toThrow(expect.objectContaining({ code }));
  });
});
