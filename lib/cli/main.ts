import { LiveUpdateError } from '../errors';
import { CliError, EXIT, type Io, realIo, unknownCommand } from './io';
import { daemonCommand } from './daemon';
import { kexecCommand } from './kexec';
import { selftest } from './selftest';
import { sessions } from './sessions';
import { status } from './status';
import { vmCommand } from './vm';

export const mainHelp = `Usage: liveupdate COMMAND [OPTIONS]

Live updates with the Linux Live Update Orchestrator (/dev/liveupdate).

Commands:
  status     can this kernel do a live update? device, holder, boot parameters
  sessions   which processes hold which LUO sessions
  kexec      load, unload or execute the next kernel (the live update itself)
  selftest   the kernel's LUO selftests, ported to this library, in two stages
  vm         run a script across a real live update in a QEMU VM
  daemon     the live update broker that hands sessions to other processes

Options:
  -h, --help      this overview
  -V, --version   the version of liveupdate

Run \`liveupdate COMMAND --help\` for a command's options.
`;

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  status,
  sessions,
  kexec: kexecCommand,
  selftest,
  vm: vmCommand,
  daemon: daemonCommand,
};

/** Runs the command line; returns the exit status. Expected failures print one line, no stack. */
export async function main(args: string[], io: Io = realIo): Promise<number> {
  const [command, ...rest] = args;
  if (command === '-h' || command === '--help' || command === 'help') {
    io.out(mainHelp);
    return EXIT.ok;
  }
  if (command === '-V' || command === '--version') {
    io.out(`${version()}\n`);
    return EXIT.ok;
  }
  if (!command) {
    io.err(mainHelp);
    return EXIT.usage;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.err(`liveupdate: ${unknownCommand('command', command, Object.keys(COMMANDS), 'liveupdate').message}\n`);
    return EXIT.usage;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    return failure(command, err, io);
  }
}

/** One line on stderr for any failure, never a stack trace; the exit status the README gives. */
function failure(command: string, err: unknown, io: Io): number {
  if (err instanceof CliError) {
    const hint = err.exitCode === EXIT.usage && !/--help/.test(err.message) ? ` (see \`liveupdate ${command} --help\`)` : '';
    io.err(`liveupdate ${command}: ${err.message}${hint}\n`);
    return err.exitCode;
  }
  if (err instanceof LiveUpdateError) {
    io.err(`liveupdate ${command}: ${err.message}\n`);
    return unavailable(err) ? EXIT.unavailable : EXIT.failed;
  }
  const e = err as { message?: string; code?: string };
  // Anything else is still one line; LIVEUPDATE_DEBUG=1 shows where it came from.
  io.err(`liveupdate ${command}: ${e?.message ?? String(err)}\n`);
  if (io.env.LIVEUPDATE_DEBUG) io.err(`${(err as Error)?.stack ?? ''}\n`);
  return EXIT.failed;
}

/** This machine cannot do it: no device, no permission, no kexec support, nothing loaded. */
function unavailable(err: LiveUpdateError): boolean {
  if (err.operation === 'LIVEUPDATE_OPEN') return ['ENOENT', 'EACCES', 'EPERM', 'EBUSY', 'ENODEV', 'ENXIO'].includes(err.code);
  if (err.code === 'ENOSYS') return true; // no kexec_file_load, no reboot(KEXEC)
  return err.operation === 'REBOOT_KEXEC' && err.code === 'EINVAL'; // nothing loaded
}

function version(): string {
  return (require('../../package.json') as { version: string }).version;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
