// Adopting a session fd that arrived from elsewhere: the name comes from
// SESSION_GET_NAME, the direction from the kernel's answer to a probe that
// changes nothing (the real-kernel tier runs the same against LUO).
import { describe, expect, test } from 'vitest';
import { LiveUpdate, OwnedFd, Session } from '../../lib/index';
import { fakeBinding, nativeError } from './fake-binding';

function adopt(probeAnswer: () => never, options: { direction?: 'incoming' | 'outgoing' } = {}) {
  const fake = fakeBinding({
    LIVEUPDATE_SESSION_GET_NAME: () => ({ name: 'from-broker' }),
    LIVEUPDATE_SESSION_PRESERVE_FD: probeAnswer,
  });
  const session = new Session(new OwnedFd(42, { binding: fake.binding }), { binding: fake.binding, ...options });
  return { session, calls: fake.calls };
}

describe('new Session(fd)', () => {
  test.each([
    ['EINVAL', 22, 'incoming'],
    ['EBADF', 9, 'outgoing'],
    ['EEXIST', 17, 'outgoing'],
  ] as const)('a probe answered %s means %s', (code, errno, direction) => {
    const { session, calls } = adopt(() => { throw nativeError(code, errno, 'ioctl'); });
    expect(session).toMatchObject({ name: 'from-broker', direction, fd: 42 });
    expect(calls.map((c) => c.call)).toEqual(['LIVEUPDATE_SESSION_GET_NAME', 'LIVEUPDATE_SESSION_PRESERVE_FD']);
    expect(calls[1]!.args[1]).toEqual({ fd: -1, token: 0n });
    session.close();
  });

  test('a direction given by the sender skips the probe', () => {
    const { session, calls } = adopt(() => { throw new Error('no probe expected'); }, { direction: 'incoming' });
    expect(session.direction).toBe('incoming');
    expect(calls.map((c) => c.call)).toEqual(['LIVEUPDATE_SESSION_GET_NAME']);
    session.close();
  });

  test('an OwnedFd is consumed only when adoption succeeds', () => {
    const fake = fakeBinding({ LIVEUPDATE_SESSION_GET_NAME: () => { throw nativeError('ENOTTY', 25, 'ioctl'); } });
    const owned = new OwnedFd(42, { binding: fake.binding });
    expect(() => new Session(owned, { binding: fake.binding })).toThrow(expect.objectContaining({ code: 'ENOTTY', operation: 'LIVEUPDATE_SESSION_GET_NAME' }));
    expect(owned.closed).toBe(false);
    owned.close();
  });
});

// Labels are put together only when a message needs one (issue 8); what
// they say is unchanged: the name quoted, escapes and all.
describe('how a closed session names itself', () => {
  test('created through LiveUpdate', () => {
    const fake = fakeBinding();
    const lu = LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding });
    const s = lu.createSessionSync('vm "1"\n');
    s.close();
    expect(() => s.fd).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED', message: 'session "vm \\"1\\"\\n" is closed' }));
    lu.close();
    expect(() => lu.fd).toThrow(expect.objectContaining({ code: 'ERR_CLOSED', message: '/dev/liveupdate is closed' }));
  });

  test('adopted from an fd', () => {
    const { session } = adopt(() => { throw nativeError('EBADF', 9, 'ioctl'); });
    session.close();
    expect(() => session.getNameSync()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED', message: 'session "from-broker" is closed' }));
  });

  test('a bare OwnedFd is "fd N"', () => {
    const fake = fakeBinding();
    const owned = new OwnedFd(42, { binding: fake.binding });
    owned.close();
    expect(() => owned.fd).toThrow(expect.objectContaining({ code: 'ERR_CLOSED', message: 'fd 42 is closed' }));
  });
});
