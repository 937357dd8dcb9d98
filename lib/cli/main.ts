import { LiveUpdateError } from '../errors';
import { CliError, EXIT, type Io, realIo } from './io';
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
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    io.out(mainHelp);
    return command ? EXIT.ok : EXIT.usage;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.err(`liveupdate: unknown command ${JSON.stringify(command)}\n\n${mainHelp}`);
    return EXIT.usage;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`liveupdate ${command}: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof LiveUpdateError) {
      io.err(`liveupdate ${command}: ${err.message}\n`);
      const unavailable = ['ENOENT', 'EACCES', 'EPERM', 'EBUSY'].includes(err.code) && err.operation === 'LIVEUPDATE_OPEN';
      return unavailable ? EXIT.unavailable : EXIT.failed;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
