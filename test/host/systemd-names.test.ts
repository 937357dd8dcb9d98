// Names on systemd hosts: the unit a process runs in (from its cgroup) and
// the kernel session name systemd gives a LUOSession= entry.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { luoSessionName, unitName } from '../../lib/systemd/index';

describe('unitName', () => {
  test.each([
    ['a system service (cgroup v2)', '0::/system.slice/vmm.service\n', 'vmm.service'],
    ['a delegated sub-cgroup of a service', '0::/system.slice/vmm.service/worker\n', 'vmm.service'],
    ['a template instance with escapes', '0::/system.slice/system-vmm.slice/vmm@guest\\x2d1.service\n', 'vmm@guest\\x2d1.service'],
    ['a transient scope', '0::/system.slice/run-r1234.scope\n', 'run-r1234.scope'],
    ['a user unit, under the user manager', '0::/user.slice/user-1000.slice/user@1000.service/app.slice/editor.service\n', 'editor.service'],
    ['a login session', '0::/user.slice/user-1000.slice/session-3.scope\n', 'session-3.scope'],
    ['PID 1', '0::/init.scope\n', 'init.scope'],
    ['a name systemd escaped with "_"', '0::/system.slice/_cpu.service\n', 'cpu.service'],
    ['a hybrid host (unified line wins)', '12:cpu,cpuacct:/system.slice/vmm.service\n1:name=systemd:/system.slice/vmm.service\n0::/system.slice/vmm.service\n', 'vmm.service'],
    ['a legacy cgroup v1 host', '5:memory:/system.slice\n1:name=systemd:/system.slice/legacy.service\n', 'legacy.service'],
  ])('%s', (_what, cgroup, unit) => {
    expect(unitName({ cgroup })).toBe(unit);
  });

  test.each([
    ['outside any unit (a container root)', '0::/\n'],
    ['only slices', '0::/user.slice/user-1000.slice\n'],
    ['an empty file', ''],
    ['no systemd hierarchy', '4:memory:/foo.service\n'],
  ])('undefined %s', (_what, cgroup) => {
    expect(unitName({ cgroup })).toBeUndefined();
  });

  test('reads /proc/self/cgroup by default, or the file it is given; undefined when there is none', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-cgroup-'));
    const file = path.join(dir, 'cgroup');
    fs.writeFileSync(file, '0::/system.slice/from-file.service\n');
    expect(unitName({ path: file })).toBe('from-file.service');
    expect(unitName({ path: path.join(dir, 'missing') })).toBeUndefined();
    const real = unitName();
    expect(real === undefined || /\.(service|scope|socket|mount|swap)$/.test(real)).toBe(true);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('luoSessionName', () => {
  test('matches what systemd 262.1 created in the VM', () => {
    expect(luoSessionName('luo-demo.service', 'demo')).toBe('luo-demo.serv-f7b8a692c3ea413a9a50d592');
  });

  test('is 13 characters of the unit, "-", then 24 hex digits with the v4-UUID bits, and fits the kernel', () => {
    const name = luoSessionName('a-very-long-unit-name-for-a-vmm@instance.service', 'x'.repeat(255));
    expect(name).toMatch(/^a-very-long-u-[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{7}$/);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(luoSessionName('s.service', 'n')).toMatch(/^s\.service-[0-9a-f]{24}$/);
    expect(luoSessionName('vmm.service', 'a')).not.toBe(luoSessionName('vmm.service', 'b'));
  });

  test.each([
    ['unit', '', 'x'],
    ['unit', 'my unit.service', 'x'],
    ['unit', 'a:b.service', 'x'],
    ['name', 'vmm.service', 'état'],
    ['name', 'vmm.service', 'a\tb'],
    ['name', 'vmm.service', 'a:b'],
    ['name', 'vmm.service', 'x'.repeat(256)],
  ])('refuses a bad %s with ERR_INVALID_ARG_VALUE', (arg, unit, name) => {
    expect(() => luoSessionName(unit, name)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(`'${arg}'`) }));
  });

  test('refuses non-strings with ERR_INVALID_ARG_TYPE', () => {
    expect(() => luoSessionName(1 as unknown as string, 'x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
