// renewLuoSession refuses what it cannot do before touching anything; the
// renewal itself (store, barrier, a second kexec) runs against systemd 262
// in the VM tier.
import { describe, expect, test } from 'vitest';
import { OwnedFd, Session } from '../../lib/index';
import { renewLuoSession } from '../../lib/systemd/index';
import { fakeBinding } from './fake-binding';

function session(direction: 'incoming' | 'outgoing') {
  const { binding, calls } = fakeBinding({ LIVEUPDATE_SESSION_GET_NAME: () => ({ name: 'vmm.service-0123456789abcdef01234567' }) });
  return { s: new Session(new OwnedFd(40, { binding }), { binding, direction }), calls };
}

describe('renewLuoSession', () => {
  test('an outgoing session needs no renewal: refused, and it stays open', async () => {
    const { s } = session('outgoing');
    await expect(renewLuoSession(s, 'guest-ram', { unit: 'vmm.service', env: { NOTIFY_SOCKET: '/run/x' } })).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    expect(s.closed).toBe(false);
    s.close();
  });

  test('outside systemd (no NOTIFY_SOCKET) nothing could keep the new session: refused before anything is closed', async () => {
    const { s } = session('incoming');
    await expect(renewLuoSession(s, 'guest-ram', { unit: 'vmm.service', env: {} })).rejects.toMatchObject({ code: 'ERR_INVALID_STATE', message: expect.stringMatching(/NOTIFY_SOCKET/) });
    expect(s.closed).toBe(false);
    s.close();
  });

  test('an FDNAME systemd would not take is refused', async () => {
    const { s } = session('incoming');
    await expect(renewLuoSession(s, 'guest:ram', { unit: 'vmm.service', env: { NOTIFY_SOCKET: '/run/x' } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    s.close();
  });
});
