// systemd 262 as PID 1 on the LUO kernel, through two real live updates by
// `liveupdate kexec exec --yes` (which runs `systemctl kexec`), modelled on
// systemd's TEST-91-LIVEUPDATE:
// - vmm.service, the shipped example (LUOSession=guest-ram), keeps 64 MiB
//   of guest RAM, and renews its session after each live update;
// - store.service pushes sealed memfds and a session of its own into its fd
//   store, then dies of SIGKILL;
// - the broker (the shipped liveupdate.socket/.service, socket-activated,
//   fd store of 4) serves clients of uids 65534 and 1.
import { describe, expect, inject, test } from 'vitest';
import { luoSessionName } from '../../lib/systemd/luo-session-name';
import type { BrokerClientRecord, DriverRecord, StoreRecord } from './record.mjs';

const run = inject('systemd');
const context = () => `console: ${run.consoleLog} (QEMU exit ${run.exitCode}${run.timedOut ? ', killed at the timeout' : ''})\n${run.consoleTail}`;
const show = (r: unknown) => `${JSON.stringify(r, null, 2)}\n${context()}`;
const SESSION = luoSessionName('vmm.service', 'guest-ram');
const NOBODY = 65534;
const DAEMON = 1;

function found<T>(what: string, r: T | undefined): T {
  if (!r) throw new Error(`${what} reported nothing\nreports: ${JSON.stringify(run.records)}\n${context()}`);
  return r;
}
const store = (boot: number) => found(`store.service in boot ${boot}`, run.records.find((x): x is StoreRecord => x.unit === 'store.service' && x.boot === boot && (boot !== 1 || x.ok)));
const client = (uid: number, boot: number) => found(`the broker client of uid ${uid} in boot ${boot}`, run.records.find((x): x is BrokerClientRecord => x.unit === 'broker-client' && x.uid === uid && x.boot === boot));
const driver = (boot: number) => found(`live-update.service in boot ${boot}`, run.records.find((x): x is DriverRecord => x.unit === 'live-update.service' && x.boot === boot));

/** What vmm.service printed in `boot` matching `re` (its first such line). */
function vmm(boot: number, re: RegExp): RegExpExecArray {
  const lines = run.vmm.filter((l) => l.boot === boot);
  for (const l of lines) {
    const m = re.exec(l.text);
    if (m) return m;
  }
  throw new Error(`vmm.service printed no line like ${re} in boot ${boot}; it printed:\n${lines.map((l) => l.text).join('\n')}\n${context()}`);
}
const sessionLine = (boot: number) => vmm(boot, /^vmm: session (\S+) \((\w+)\) from LISTEN_FDS as "guest-ram"/);
const preservedLine = (boot: number) => vmm(boot, /^vmm: guest RAM preserved in session (\S+) \((\w+)\) under token 1/);
const filled = () => vmm(1, /^vmm: guest RAM filled: (\d+) bytes, sha256 ([0-9a-f]{64})/);
const back = (boot: number) => vmm(boot, /^vmm: guest RAM back from session (\S+): (\d+) bytes, sha256 ([0-9a-f]{64}); session finished/);

test('luoSessionName follows systemd 262 (luo-demo.service/demo as seen in a VM)', () => {
  expect(luoSessionName('luo-demo.service', 'demo')).toBe('luo-demo.serv-f7b8a692c3ea413a9a50d592');
});

describe('boot 1', () => {
  test('vmm.service gets an outgoing session under FDNAME guest-ram, named as luoSessionName() says', () => {
    expect(sessionLine(1).slice(1)).toEqual([SESSION, 'outgoing']);
  });

  test('vmm.service fills 64 MiB of guest RAM and preserves it before READY=1', () => {
    expect(filled()[1]).toBe(String(64 << 20));
    expect(preservedLine(1).slice(1)).toEqual([SESSION, 'outgoing']);
    expect(run.marks['systemctl kexec'], context()).toBeGreaterThan(run.vmm.find((l) => l.text.startsWith('vmm: guest RAM preserved'))!.ms);
  });

  test('store.service stores two sealed memfds and a session it created, then dies of SIGKILL', () => {
    const r = store(1);
    expect(r.stored, show(r)).toEqual({
      testfd1: { content: expect.any(String), seals: ['seal', 'shrink', 'grow', 'write'] },
      testfd2: { content: expect.any(String), seals: ['shrink', 'grow'] },
      direct: { content: expect.any(String) },
    });
    expect(run.marks['store'], context()).toBeDefined();
  });

  test('storeFds refuses, sending nothing: a session named "systemd", an FDNAME with ":", a non-ASCII FDNAME', () => {
    const r = store(1);
    for (const what of ['session named systemd', 'FDNAME with ":"', 'non-ASCII FDNAME']) {
      expect(r.refused?.[what]?.code, show(r)).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  test('the socket-activated broker serves uids 65534 and 1, and refuses a session its full fd store would lose (ENOSPC)', () => {
    const a = client(NOBODY, 1);
    const b = client(DAEMON, 1);
    expect(a.ok && b.ok, show([a, b])).toBe(true);
    expect(a.created?.vm?.content, show(a)).toMatch(/^vm of uid 65534/);
    expect(b.created?.vm?.content, show(b)).toMatch(/^vm of uid 1:/);
    expect(b.created?.spare?.content, show(b)).toMatch(/^spare of uid 1:/);
    expect(b.created?.overflow, show(b)).toMatchObject({ code: 'ENOSPC', message: expect.stringMatching(/FileDescriptorStoreMax=4/) });
    expect(b.listed.map((s) => s.name).sort(), show(b)).toEqual(['spare', 'vm']);
  });

  test('KExecCount is 0; `liveupdate kexec load` loads the kernel; `kexec exec --yes` starts the live update', () => {
    const r = driver(1);
    expect(r.kexecCountProperty, show(r)).toBe('u 0');
    expect(r.commands[0]?.status, show(r)).toBe(0);
    expect(r.commands[0]?.stdout).toMatch(/^command line: .*liveupdate=on/m);
    expect(run.marks['systemctl kexec'], context()).toBeDefined();
    expect(run.records.filter((x) => x.unit === 'live-update.service' && x.boot === 1 && !x.ok), show(r)).toEqual([]);
  });
});

describe('boot 2, after `systemctl kexec`', () => {
  test('vmm.service gets the session back from systemd, incoming, under the same FDNAME and kernel name', () => {
    expect(sessionLine(2).slice(1)).toEqual([SESSION, 'incoming']);
  });

  test('the guest RAM comes back whole (size and SHA-256 as in boot 1), and vmm.service FINISHes the session', () => {
    const [, session, bytes, sha] = back(2);
    expect([session, bytes, sha]).toEqual([SESSION, String(64 << 20), filled()[2]]);
  });

  test('renewLuoSession gives vmm.service a fresh outgoing session of the same name, and the RAM goes in again', () => {
    expect(preservedLine(2).slice(1)).toEqual([SESSION, 'outgoing']);
  });

  test('store.service gets its memfds back with contents and seals, and its own session incoming with the memfd at token 42', () => {
    const before = store(1);
    const r = store(2);
    expect(r.listened, show(r)).toEqual({
      testfd1: { kind: 'memfd' },
      testfd2: { kind: 'memfd' },
      direct: { kind: 'session', name: 'luosession-direct', direction: 'incoming' },
    });
    expect(r.back, show(r)).toEqual(before.stored);
    expect(r.finished, show(r)).toBe(true);
  });

  test('the session named "systemd" is nowhere (never stored, never restored)', () => {
    expect(Object.keys(store(2).listened)).not.toContain('hijack');
  });

  test('each broker client gets exactly its own sessions back, with their contents', () => {
    for (const uid of [NOBODY, DAEMON]) {
      const before = client(uid, 1);
      const r = client(uid, 2);
      const kept = Object.entries(before.created ?? {}).filter(([, o]) => o.content);
      expect(r.listed.map((s) => s.name).sort(), show(r)).toEqual(kept.map(([name]) => name).sort());
      expect(r.listed.every((s) => s.state === 'incoming'), show(r)).toBe(true);
      expect(r.retrieved, show(r)).toEqual(Object.fromEntries(kept));
    }
  });

  test('the Manager says KExecCount 1', () => {
    expect(driver(2).kexecCountProperty, show(driver(2))).toBe('u 1');
  });

  test('time from `systemctl kexec` until vmm.service is back with its data (logged, not asserted)', () => {
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const ready = run.vmm.find((l) => l.boot === 1 && l.text.startsWith('vmm: guest RAM preserved'))!.ms;
    const backAt = run.vmm.find((l) => l.boot === 2 && l.text.startsWith('vmm: guest RAM back'))!.ms;
    console.log(
      `systemd ${run.systemdVersion} on kernel ${run.kernelVersion}, emulated: ` +
        `root filesystem ${s(run.rootfsMs)} (look-up, and build unless cached) + disk image ${s(run.imageMs)}; ` +
        `VM start -> vmm ready ${s(ready)}; systemctl kexec -> vmm back with its data ${s(backAt - run.marks['systemctl kexec']!)}; ` +
        `whole run (${run.kexecs} live updates) ${s(run.wallMs)}`,
    );
  });
});

describe.runIf(run.kexecs >= 2)('boot 3, after a second `systemctl kexec`', () => {
  test('vmm.service gets the renewed session back, incoming, with the same guest RAM', () => {
    expect(sessionLine(3).slice(1)).toEqual([SESSION, 'incoming']);
    const [, session, bytes, sha] = back(3);
    expect([session, bytes, sha]).toEqual([SESSION, String(64 << 20), filled()[2]]);
  });

  test('store.service finds its store empty, as it left it', () => {
    expect(store(3).listened, show(store(3))).toEqual({});
  });

  test('the broker clients have nothing left: they finished their sessions', () => {
    for (const uid of [NOBODY, DAEMON]) expect(client(uid, 3).listed, show(client(uid, 3))).toEqual([]);
  });

  test('the Manager says KExecCount 2', () => {
    expect(driver(3).kexecCountProperty, show(driver(3))).toBe('u 2');
  });
});

test('the guest powers itself off afterwards (`systemctl poweroff`)', () => {
  expect(run.marks['powering off'], context()).toBeDefined();
  expect(run.timedOut, context()).toBe(false);
  expect(run.exitCode, context()).toBe(0);
});
