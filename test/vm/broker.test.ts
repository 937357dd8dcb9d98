// The live update broker on a real LUO kernel across a real kexec: clients
// of different uids, each confined to its own names (test/guest/broker.mts).
import { describe, expect, inject, test } from 'vitest';

const run = inject('broker');
const step = (stage: number, name: string) => {
  const s = run.steps.find((x) => x.stage === stage && x.step === name);
  if (!s) throw new Error(`stage ${stage} never got to "${name}"; console: ${run.consoleLog}\n${run.consoleText.split('\n').slice(-40).join('\n')}`);
  return s as Record<string, any>;
};

describe('before the live update', () => {
  test('two uids can use the same name; their kernel sessions differ and carry the uid', () => {
    const { a, b } = step(1, 'two uids create the same name');
    expect(a.kernelName).toMatch(/^luod-1000-/);
    expect(b.kernelName).toMatch(/^luod-1001-/);
    expect(a.kernelName).not.toBe(b.kernelName);
  });

  test('a uid outside the allowlist is refused with EACCES', () => {
    expect(step(1, 'a uid outside the allowlist')).toMatchObject({ event: 'refused', code: 'EACCES', uid: 1002 });
  });

  test('after a broker restart, clients hand their sessions back and the broker holds them again', () => {
    const s = step(1, 'broker restarted; clients re-adopt');
    expect(s.a.event).toBe('adopted');
    expect(s.b.event).toBe('adopted');
    expect(s.sessions.map((x: { uid: number; name: string }) => `${x.uid}:${x.name}`).sort()).toEqual(['1000:ram', '1001:ram']);
  });

  test('a broker killed with SIGKILL between its barrier and the reboot: restarted, clients adopt their sessions back, and they come through the live update', () => {
    const s = step(1, 'broker killed with SIGKILL between barrier and reboot, restarted; clients adopt back');
    // The barrier passed (both clients were asked and answered ready), the
    // kernel was loaded and the record written: the broker was at its reboot.
    expect(s.answer).toEqual({ ok: true });
    expect(s.prepared).toEqual({ a: 1, b: 1 });
    expect(s.rebooting.sessions.map((x: { uid: number; name: string }) => `${x.uid}:${x.name}`).sort()).toEqual(['1000:ram', '1001:ram']);
    expect(s.signal).toBe('SIGKILL');
    expect(s.a).toMatchObject({ event: 'adopted', uid: 1000 });
    expect(s.b).toMatchObject({ event: 'adopted', uid: 1001 });
    expect(s.sessions.map((x: { uid: number; name: string; state: string }) => `${x.uid}:${x.name}:${x.state}`).sort()).toEqual(['1000:ram:outgoing', '1001:ram:outgoing']);
    // ...and after the live update each gets its data back ("each client gets back exactly its own data").
  });

  test('a client killed before the kexec leaves its session held by the broker', () => {
    expect(step(1, 'a client killed before the kexec').sessions).toEqual([expect.objectContaining({ uid: 1000, name: 'doomed', state: 'outgoing' })]);
  });

  test('malformed and oversized messages get an error reply (answering the request once it has an id) and the broker keeps serving', () => {
    const s = step(1, 'malformed messages');
    expect(s.notJson).toMatchObject({ ok: false, error: { code: 'EPROTO' } });
    expect(s.badOp).toMatchObject({ id: 1, ok: false, error: { code: 'EPROTO', message: 'unknown op "steal"' } });
    expect(s.oversized).toMatchObject({ ok: false, error: { code: 'EMSGSIZE' } });
    expect(s.tooLongName).toMatchObject({ ok: false, error: { code: 'EINVAL' } });
    expect(s.stillServing).toMatchObject({ id: 3, ok: true });
  });

  test('a client whose prepare handler throws is reported not ready, with why, and the live update is refused', () => {
    const s = step(1, 'kexec with a client whose prepare handler throws');
    expect(s).toMatchObject({ refused: true, code: 'EBUSY' });
    expect(s.notReady).toEqual([{ pid: s.gPid, uid: 1000, reason: 'its prepare handler failed: cannot pause the guest: disk full' }]);
    expect(s.message).toContain('cannot pause the guest: disk full');
  });

  test('the failing client gets a warning instead of dying of an unhandled rejection', () => {
    const s = step(1, 'kexec with a client whose prepare handler throws');
    expect(s.warning).toMatchObject({ name: 'LiveUpdateWarning', code: 'LIVEUPDATE_PREPARE_FAILED', message: expect.stringContaining('disk full') });
    expect(s.gStillRunning).toBe(true);
  });

  test('a live update is refused while a client has not acknowledged, naming it', () => {
    const s = step(1, 'kexec with a client that never acknowledges');
    expect(s.refused).toBe(true);
    expect(s.code).toBe('EBUSY');
    expect(s.notReady).toEqual([{ pid: s.fPid, uid: 1000 }]);
  });

  test('a client that connects late still gets its session in', () => {
    expect(step(1, 'a client that connects late')).toMatchObject({ event: 'kept', uid: 1001 });
  });
});

describe('after the live update', () => {
  test("the new broker reads the previous broker's record", () => {
    const names = step(2, 'new broker found the record').sessions.map((x: { uid: number; name: string; state: string }) => `${x.uid}:${x.name}:${x.state}`);
    expect(names.sort()).toEqual(['1000:doomed:incoming', '1000:failing:incoming', '1000:grabbed:incoming', '1000:noack:incoming', '1000:ram:incoming', '1001:late:incoming', '1001:ram:incoming']);
  });

  test('a client killed between asking for its session and reading the reply loses nothing: the next client of its uid gets the data', () => {
    const s = step(2, 'a client killed between its retrieve and the reply');
    expect(s.state).toBe('incoming');
    expect(s.secondClient).toMatchObject({ event: 'checked', ok: true, got: 'H-data', direction: 'incoming' });
  });

  test('each client gets back exactly its own data', () => {
    const r = step(2, 'each client gets its own session back');
    for (const key of ['a', 'b', 'killedBeforeKexec', 'late', 'neverAcked', 'prepareFailed']) {
      expect(r[key], key).toMatchObject({ event: 'checked', ok: true, direction: 'incoming' });
    }
    expect(r.a.got).toBe('A-data');
    expect(r.b.got).toBe('B-data');
  });

  test("another uid's names cannot be reached, and nothing is handed out twice", () => {
    const r = step(2, "another uid's names are out of reach");
    expect(r.bAsksForDoomed).toMatchObject({ code: 'ENOENT', uid: 1001 });
    expect(r.aAsksForLate).toMatchObject({ code: 'ENOENT', uid: 1000 });
    expect(r.aAsksAgain).toMatchObject({ code: 'EINVAL' });
  });

  test('outsiders are still refused, and every session was handed out', () => {
    expect(step(2, 'outsiders are still refused')).toMatchObject({ code: 'EACCES' });
    expect(step(2, 'every session was handed out').sessions.every((x: { state: string }) => x.state === 'handed-out')).toBe(true);
  });
});
