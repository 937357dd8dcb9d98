import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Kexec, kexec as realKexec } from '../kexec';
import { type Systemctl, kexecTrigger, realSystemctl } from './init-system';
import { CliError, EXIT, type Io, parse, readableFile, unknownCommand } from './io';

export const kexecHelp = `Usage:
  liveupdate kexec load --kernel FILE [--initrd FILE] [--append "ARGS" | --reuse-cmdline]
  liveupdate kexec unload
  liveupdate kexec exec --yes [--force]

  load    loads the next kernel with kexec_file_load(2). Its command line is
          --append's, or with --reuse-cmdline (the default) the running one.
          Warns when liveupdate=on is missing from it.
  unload  unloads it again.
  exec    reboots into the loaded kernel now: the live update. Refuses when
          no kernel is loaded; needs --yes.
          With systemd as PID 1 it runs \`systemctl kexec\`: services stop in
          order and file systems are unmounted; only what services keep in
          their fd stores (FileDescriptorStorePreserve=yes, LUOSession=)
          survives. --force skips systemd and reboots at once.
          Without systemd it calls reboot(LINUX_REBOOT_CMD_KEXEC) at once:
          nothing is shut down, and processes holding LUO sessions keep them.
          \`liveupdate status\` says which applies here.

Needs root (CAP_SYS_BOOT).
`;

// Where `load` records the command line, so `exec` can warn about it.
const recordFile = (io: Io) => path.join(io.env.LIVEUPDATE_RUN_DIR ?? '/run/liveupdate', 'kexec-cmdline');

export async function kexecCommand(args: string[], io: Io, k: Kexec = realKexec, systemctl: Systemctl = realSystemctl): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub) {
    io.err(kexecHelp);
    return EXIT.usage;
  }
  if (sub === '-h' || sub === '--help') return help(io);
  if (sub === 'load') {
    const { values } = parse(rest, {
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      append: { type: 'string' },
      'reuse-cmdline': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) return help(io);
    if (!values.kernel) throw new CliError('kexec load needs --kernel FILE', EXIT.usage);
    if (values.append !== undefined && values['reuse-cmdline']) throw new CliError('--append and --reuse-cmdline exclude each other', EXIT.usage);
    readableFile(values.kernel, '--kernel');
    if (values.initrd !== undefined) readableFile(values.initrd, '--initrd');
    const cmdline = values.append ?? fs.readFileSync(path.join(io.procRoot, 'cmdline'), 'utf8').trim();
    if (!cmdline.split(/\s+/).includes('liveupdate=on')) {
      io.err('liveupdate: warning: liveupdate=on is not on the new command line; the new kernel will not take sessions back\n');
    }
    await k.load({ kernel: values.kernel, initrd: values.initrd, cmdline });
    try {
      fs.mkdirSync(path.dirname(recordFile(io)), { recursive: true });
      fs.writeFileSync(recordFile(io), cmdline);
    } catch {
      // Only used for exec's warning.
    }
    io.out(`loaded ${values.kernel}${values.initrd ? ` with ${values.initrd}` : ''}\ncommand line: ${cmdline}\n`);
    return EXIT.ok;
  }
  if (sub === 'unload') {
    const { values } = parse(rest, { help: { type: 'boolean', short: 'h' } });
    if (values.help) return help(io);
    await k.unload();
    fs.rmSync(recordFile(io), { force: true });
    io.out('unloaded\n');
    return EXIT.ok;
  }
  if (sub === 'exec') {
    const { values } = parse(rest, { yes: { type: 'boolean', short: 'y' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
    if (values.help) return help(io);
    const loaded = readLoaded(io);
    if (loaded === undefined) throw new CliError(`this kernel shows no kexec support (${path.join(io.sysRoot, 'kernel/kexec_loaded')} is missing)`, EXIT.unavailable);
    if (loaded === false) throw new CliError('no kernel is loaded: run `liveupdate kexec load --kernel FILE` first', EXIT.unavailable);
    let recorded: string | undefined;
    try {
      recorded = fs.readFileSync(recordFile(io), 'utf8');
    } catch {
      // loaded by another tool
    }
    if (recorded !== undefined && !recorded.split(/\s+/).includes('liveupdate=on')) {
      io.err('liveupdate: warning: the loaded kernel was given no liveupdate=on; it will not take sessions back\n');
    }
    if (!values.yes) throw new CliError('kexec exec reboots this machine now; pass --yes to go ahead', EXIT.usage);
    const trigger = kexecTrigger(io);
    if (trigger.via === 'systemctl' && !values.force) {
      io.out('systemd is PID 1: handing the live update to `systemctl kexec`\n');
      const status = systemctl(['kexec']);
      if (status !== 0) throw new CliError(`systemctl kexec failed (exit status ${status})`, EXIT.failed);
      return EXIT.ok;
    }
    if (trigger.via === 'systemctl') {
      io.err('liveupdate: warning: --force: rebooting at once; systemd stops no service, unmounts and flushes nothing\n');
    }
    io.out('rebooting into the loaded kernel\n');
    k.rebootSync();
  }
  throw unknownCommand('kexec command', sub, ['load', 'unload', 'exec'], 'liveupdate kexec');
}

function help(io: Io): number {
  io.out(kexecHelp);
  return EXIT.ok;
}

/** /sys/kernel/kexec_loaded: true, false, or undefined when unreadable. */
function readLoaded(io: Io): boolean | undefined {
  try {
    return fs.readFileSync(path.join(io.sysRoot, 'kernel/kexec_loaded'), 'utf8').trim() === '1';
  } catch {
    return undefined;
  }
}
