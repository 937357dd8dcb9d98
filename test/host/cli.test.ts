// The `liveupdate` command: help, exit codes and output of each command,
// against fake /proc and /sys trees and a fake kexec. The kernel-facing
// runs are in the VM tier (test/guest/cases.mts, test/vm/example.test.ts).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import type { Io } from '../../lib/cli/io';
import { kexecCommand } from '../../lib/cli/kexec';
import { main } from '../../lib/cli/main';
import { createKexec } from '../../lib/kexec';
import { fakeBinding } from './fake-binding';

const root = path.resolve(__dirname, '../..');

function fakeIo(overrides: Partial<Io> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env: {}, procRoot: '/proc', sysRoot: '/sys', ...overrides };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

function tree(files: Record<string, string>, links: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-cli-'));
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  for (const [link, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(dir, link)), { recursive: true });
    fs.symlinkSync(target, path.join(dir, link));
  }
  return dir;
}

describe('help and usage', () => {
  test('no command prints the overview on stderr and exits 2; --help prints it on stdout and exits 0', async () => {
    const t = fakeIo();
    expect(await main([], t.io)).toBe(2);
    expect(t.err()).toMatch(/^Usage: liveupdate COMMAND/);
    expect(t.out()).toBe('');
    const h = fakeIo();
    expect(await main(['--help'], h.io)).toBe(0);
    expect(h.out()).toMatch(/^Usage: liveupdate COMMAND/);
    expect(h.err()).toBe('');
  });

  test.each([['--version'], ['-V']])('%s prints the package version', async (flag) => {
    const t = fakeIo();
    expect(await main([flag], t.io)).toBe(0);
    expect(t.out()).toBe(`${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version}\n`);
  });

  test.each([
    [['stauts'], /unknown command "stauts"; did you mean "status"\?/],
    [['sesions'], /did you mean "sessions"\?/],
    [['kexec', 'laod'], /unknown kexec command "laod"; did you mean "load"\?/],
    [['vm', 'rnu'], /did you mean "run"\?/],
    [['frobnicate'], /unknown command "frobnicate" \(see `liveupdate --help`\)/],
  ])('%j suggests the nearest command', async (args, message) => {
    const t = fakeIo();
    expect(await main(args, t.io)).toBe(2);
    expect(t.err()).toMatch(message);
    expect(t.err().split('\n').filter(Boolean)).toHaveLength(1);
  });

  test('a usage error points at the command\'s --help', async () => {
    const t = fakeIo();
    expect(await main(['selftest', '--stage', '3'], t.io)).toBe(2);
    expect(t.err()).toBe('liveupdate selftest: --stage takes 1 or 2 (see `liveupdate selftest --help`)\n');
  });

  test.each(['status', 'sessions', 'kexec', 'selftest', 'vm', 'daemon'])('`%s --help` explains the command and exits 0', async (command) => {
    const t = fakeIo();
    expect(await main([command, '--help'], t.io)).toBe(0);
    expect(t.out()).toMatch(new RegExp(`^Usage:\\s+liveupdate ${command}`, 'm'));
  });

  test.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['status', '--bogus'], /Unknown option '--bogus'/],
    [['selftest', '--stage', '3'], /--stage takes 1 or 2/],
    [['selftest', '--only', 'everything'], /--only takes device or kexec/],
    [['kexec', 'load'], /needs --kernel FILE/],
    [['kexec', 'load', '--kernel', 'k', '--append', 'x', '--reuse-cmdline'], /exclude each other/],
    [['kexec', 'reboot'], /unknown kexec command "reboot"/],
    [['vm', 'run'], /needs a SCRIPT/],
    [['daemon', '--mode', '999'], /--mode takes octal permission bits/],
    [['daemon', '--allow-uid', 'bob'], /--allow-uid takes comma-separated ids/],
    [['daemon', '--owner', 'no-such-user-here'], /--owner takes a user name or uid; "no-such-user-here" is neither/],
    [['daemon', '--group', 'no-such-group-here'], /--group takes a group name or gid; "no-such-group-here" is neither/],
    [['daemon', 'kexec'], /daemon kexec needs --kernel FILE/],
    [['vm', 'run', '/nonexistent.mjs'], /script \/nonexistent.mjs: no such file/],
    [['vm', 'run', 'examples/keep-guest-ram.mjs', '--timeout', 'soon'], /--timeout takes a number of seconds/],
  ])('%j is a usage error (exit 2) with one line on stderr', async (args, message) => {
    const t = fakeIo();
    expect(await main(args, t.io)).toBe(2);
    expect(t.err()).toMatch(message);
  });

  test('selftest --tap without a device still ends in valid TAP: a bail-out, exit 3', async () => {
    const t = fakeIo();
    expect(await main(['selftest', '--tap', '--device', '/nonexistent/liveupdate'], t.io)).toBe(3);
    expect(t.out()).toMatch(/^TAP version 13\nBail out! ENOENT: \/nonexistent\/liveupdate does not exist/);
    expect(t.err().split('\n').filter(Boolean)).toHaveLength(1);
  });

  describe('no stack trace ever: every command that takes a file, given a missing file, a directory, an unreadable file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-files-'));
    fs.chmodSync(dir, 0o755);
    const unreadable = path.join(dir, 'unreadable');
    fs.writeFileSync(unreadable, 'k');
    fs.chmodSync(unreadable, 0o000);
    const commands = (file: string) => [
      ['kexec', 'load', '--kernel', file],
      ['kexec', 'load', '--kernel', __filename, '--initrd', file],
      ['selftest', '--device', file],
      ['status', '--device', file],
      ['vm', 'run', file],
      ['vm', 'run', __filename, '--kernel', file],
    ];
    const cases = [
      ['missing', path.join(dir, 'missing')],
      ['a directory', dir],
      ['unreadable', unreadable],
    ].flatMap(([what, file]) => commands(file!).map((argv) => [what!, argv] as const));
    // Unreadable needs someone the permissions apply to: root reads anything.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    test.each(cases)('%s: %j', (_what, argv) => {
      const r = spawnSync(process.execPath, [path.join(root, 'bin/liveupdate.js'), ...argv], {
        encoding: 'utf8',
        ...asNobody,
        env: { ...process.env, LIVEUPDATE_RUN_DIR: dir, LIVEUPDATE_CACHE_DIR: dir },
        timeout: 60_000,
      });
      expect(`${r.stdout}${r.stderr}`, r.stderr).not.toMatch(/^\s+at /m);
      if (argv[0] === 'status') {
        // A report, not a failure: it says what is wrong and exits 3.
        expect(r.stdout).toMatch(/live update: {2}not possible: .*(does not exist|is not a character device|without)/);
        expect(r.status).toBe(3);
        return;
      }
      expect(r.stderr.split('\n').filter((l) => l && !/warning:/.test(l)), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^liveupdate ${argv[0]}: `, 'm'));
      expect([1, 2, 3]).toContain(r.status);
    });
  });

  test('an expected failure prints one line and no stack trace', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'bin/liveupdate.js'), 'selftest', '--device', '/nonexistent/liveupdate'], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe(
      "liveupdate selftest: ENOENT: /nonexistent/liveupdate does not exist: this kernel has no Live Update Orchestrator (CONFIG_LIVEUPDATE) or was booted without liveupdate=on, open '/nonexistent/liveupdate'\n",
    );
  });
});

describe('status', () => {
  test('reports the device, its holder and the boot parameters as JSON', async () => {
    const device = '/dev/null'; // a character device standing in for /dev/liveupdate
    const proc = tree({ cmdline: 'console=ttyS0 liveupdate=on kho=on\n', '123/comm': 'luod\n' }, { '123/fd/4': device });
    const t = fakeIo({ procRoot: proc });
    expect(await main(['status', '--json', '--device', device], t.io)).toBe(0);
    expect(JSON.parse(t.out())).toMatchObject({
      device: { path: device, present: true, holders: [{ pid: 123, command: 'luod' }] },
      cmdline: { liveupdate: 'on', kho: 'on' },
      preservable: ['memfd'],
      problems: [],
      trigger: { via: 'reboot' },
    });
  });

  test('without the device it says why a live update is not possible and exits 3', async () => {
    const proc = tree({ cmdline: 'console=ttyS0\n' });
    const t = fakeIo({ procRoot: proc });
    expect(await main(['status', '--device', '/nonexistent/liveupdate'], t.io)).toBe(3);
    expect(t.out()).toMatch(/^device: +\/nonexistent\/liveupdate missing$/m);
    expect(t.out()).toMatch(/^live update: +not possible: /m);
  });
});

describe('sessions', () => {
  test('lists the session fds processes hold, with full names', async () => {
    const long = 'A'.repeat(63);
    const proc = tree(
      { '10/comm': 'vmm\n', '20/comm': 'luod\n' },
      { '10/fd/7': 'anon_inode:[luo_session] vm-ram', '10/fd/8': '/dev/null', '20/fd/3': `anon_inode:[luo_session] ${long}` },
    );
    const t = fakeIo({ procRoot: proc });
    expect(await main(['sessions', '--json'], t.io)).toBe(0);
    expect(JSON.parse(t.out())).toEqual([
      { pid: 10, command: 'vmm', fd: 7, name: 'vm-ram' },
      { pid: 20, command: 'luod', fd: 3, name: long },
    ]);
    const text = fakeIo({ procRoot: proc });
    await main(['sessions'], text.io);
    expect(text.out()).toMatch(/^\s+10  vmm\s+fd 7\s+vm-ram$/m);
  });

  test('as a user other than root it says it sees only that user\'s processes (on stderr: --json stays clean)', async () => {
    const t = fakeIo({ procRoot: tree({}), uid: 1000 });
    expect(await main(['sessions', '--json'], t.io)).toBe(0);
    expect(JSON.parse(t.out())).toEqual([]);
    expect(t.err()).toMatch(/as uid 1000 this shows only your own processes' sessions; run it as root/);
  });

  test('says so when nobody holds a session', async () => {
    const t = fakeIo({ procRoot: tree({ '1/comm': 'init\n' }) });
    expect(await main(['sessions'], t.io)).toBe(0);
    expect(t.out()).toBe('no process holds a LUO session\n');
  });
});

describe('kexec', () => {
  const kernel = path.join(tree({ bzImage: 'k' }), 'bzImage');

  function setup(loaded: '0' | '1') {
    const { binding, calls } = fakeBinding();
    const run = tree({});
    const t = fakeIo({ procRoot: tree({ cmdline: 'console=ttyS0 liveupdate=on\n' }), sysRoot: tree({ 'kernel/kexec_loaded': `${loaded}\n` }), env: { LIVEUPDATE_RUN_DIR: run } });
    return { t, calls, k: createKexec(() => binding, () => 'unused') };
  }

  test('load reuses the running command line by default', async () => {
    const { t, calls, k } = setup('0');
    expect(await kexecCommand(['load', '--kernel', kernel], t.io, k)).toBe(0);
    expect(calls[0]!.args[2]).toBe('console=ttyS0 liveupdate=on');
    expect(t.err()).toBe('');
  });

  test('load warns when liveupdate=on is missing from --append', async () => {
    const { t, calls, k } = setup('0');
    expect(await kexecCommand(['load', '--kernel', kernel, '--append', 'console=ttyS0'], t.io, k)).toBe(0);
    expect(calls[0]!.args[2]).toBe('console=ttyS0');
    expect(t.err()).toMatch(/warning: liveupdate=on is not on the new command line/);
  });

  test('exec refuses when no kernel is loaded (exit 3)', async () => {
    const { t, k } = setup('0');
    await expect(kexecCommand(['exec', '--yes'], t.io, k)).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/no kernel is loaded/) });
  });

  test('exec needs --yes, and warns about a loaded command line without liveupdate=on', async () => {
    const { t, k } = setup('1');
    await kexecCommand(['load', '--kernel', kernel, '--append', 'quiet'], t.io, k);
    await expect(kexecCommand(['exec'], t.io, k)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/pass --yes/) });
    expect(t.err()).toMatch(/the loaded kernel was given no liveupdate=on/);
  });

  test('exec --yes reboots into the loaded kernel', async () => {
    const { t, calls, k } = setup('1');
    await expect(kexecCommand(['exec', '--yes'], t.io, k)).rejects.toMatchObject({ code: 'EINVAL', operation: 'REBOOT_KEXEC' });
    expect(calls.map((c) => c.call)).toEqual(['rebootKexec']);
  });

  describe('with systemd as PID 1', () => {
    function underSystemd() {
      const s = setup('1');
      const io = { ...s.t.io, procRoot: tree({ cmdline: 'liveupdate=on\n', '1/comm': 'systemd\n' }) };
      const systemctl: string[][] = [];
      return { ...s, io, systemctl, run: (status: number) => (args: string[]) => (systemctl.push(args), status) };
    }

    test('exec --yes goes through `systemctl kexec`, never the raw reboot', async () => {
      const { io, calls, k, systemctl, run, t } = underSystemd();
      expect(await kexecCommand(['exec', '--yes'], io, k, run(0))).toBe(0);
      expect(systemctl).toEqual([['kexec']]);
      expect(calls.map((c) => c.call)).not.toContain('rebootKexec');
      expect(t.out()).toMatch(/handing the live update to `systemctl kexec`/);
    });

    test('a failing systemctl is an error naming it, and still no raw reboot', async () => {
      const { io, calls, k, run } = underSystemd();
      await expect(kexecCommand(['exec', '--yes'], io, k, run(1))).rejects.toMatchObject({ exitCode: 1, message: 'systemctl kexec failed (exit status 1)' });
      expect(calls.map((c) => c.call)).not.toContain('rebootKexec');
    });

    test('--force reboots at once, with a warning that systemd shuts nothing down', async () => {
      const { io, calls, k, systemctl, run, t } = underSystemd();
      await expect(kexecCommand(['exec', '--yes', '--force'], io, k, run(0))).rejects.toMatchObject({ operation: 'REBOOT_KEXEC' });
      expect(systemctl).toEqual([]);
      expect(calls.map((c) => c.call)).toEqual(['rebootKexec']);
      expect(t.err()).toMatch(/--force: rebooting at once; systemd stops no service/);
    });

    test('status says the live update goes through systemctl kexec', async () => {
      const { io, t } = underSystemd();
      await main(['status', '--json', '--device', '/nonexistent/liveupdate'], io);
      expect(JSON.parse(t.out()).trigger).toMatchObject({ via: 'systemctl', init: 'systemd' });
    });
  });
});
