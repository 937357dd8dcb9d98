import { spawn } from 'node:child_process';
import { liveUpdateToNextStage } from '../vm/stage';
import { humanLine, runSelftest, summary, tapLine } from '../selftest/index';
import type { SelftestResult } from '../selftest/support';
import type { Session } from '../session';
import { CliError, EXIT, type Io, parse } from './io';

export const selftestHelp = `Usage: liveupdate selftest [--stage 1|2] [--tap] [--only device|kexec] [--device PATH]

Runs the kernel's own LUO selftests (tools/testing/selftests/liveupdate),
ported to this library: the 15 device cases and the two-stage programs
luo_kexec_simple, luo_multi_session, luo_stress_sessions, luo_stress_files.

Stage 1 (before a live update) runs the device cases and the first half of
each program, then leaves a background process holding the sessions and tells
you to kexec (liveupdate kexec load … && liveupdate kexec exec --yes). Stage 2,
run after the kexec, takes the sessions back and checks them. The stage is
found from the state sessions the programs preserve, as upstream does;
--stage only checks it.

Inside a VM from \`liveupdate vm run\`, stage 1 triggers the live update itself.

Options:
  --stage N      fail unless the machine is in stage N
  --tap          print TAP (as kselftest does) instead of a report
  --only PART    only the device cases, or only the kexec programs
  --device PATH  the LUO device (default /dev/liveupdate)
  -h, --help     show this help

Exit status: 0 all passed, 1 a case failed, 2 usage, 3 no LUO device.
`;

export async function selftest(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    stage: { type: 'string' },
    tap: { type: 'boolean' },
    only: { type: 'string' },
    device: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(selftestHelp);
    return EXIT.ok;
  }
  if (values.stage !== undefined && values.stage !== '1' && values.stage !== '2') throw new CliError('--stage takes 1 or 2', EXIT.usage);
  if (values.only !== undefined && values.only !== 'device' && values.only !== 'kexec') throw new CliError('--only takes device or kexec', EXIT.usage);

  let index = 0;
  if (values.tap) io.out('TAP version 13\n');
  const onResult = (r: SelftestResult) => io.out(`${values.tap ? tapLine(r, ++index) : humanLine(r)}\n`);
  let run;
  try {
    run = await runSelftest({
      devicePath: values.device,
      expectStage: values.stage === undefined ? undefined : (Number(values.stage) as 1 | 2),
      only: values.only as 'device' | 'kexec' | undefined,
      onResult,
    });
  } catch (err) {
    // A TAP stream must end in a plan or a bail-out; the error itself goes to stderr.
    if (values.tap) io.out(`Bail out! ${(err as Error).message.split('\n')[0]}\n`);
    throw err;
  }
  const failed = run.results.some((r) => !r.ok);
  io.out(values.tap ? `1..${index}\n# ${summary(run.results)}\n` : `\nstage ${run.stage}: ${summary(run.results)}\n`);
  // After the plan, prose only as TAP comments.
  const say = (text: string) => io.out(values.tap ? text.replace(/^(?=.)/gm, '# ') : text);

  if (run.stage === 1 && run.held.length > 0) {
    if (io.env.LIVEUPDATE_VM_STAGE) {
      say(`holding ${run.held.length} sessions through a live update into stage 2\n`);
      liveUpdateToNextStage({ env: io.env });
    }
    const pid = holdInBackground(run.held);
    say(
      `\nprocess ${pid} holds ${run.held.length} sessions. Now live-update this machine, e.g.\n` +
        '  liveupdate kexec load --kernel /boot/vmlinuz-$(uname -r) && liveupdate kexec exec --yes\n' +
        'then run `liveupdate selftest` again for stage 2.\n',
    );
  }
  return failed ? EXIT.failed : EXIT.ok;
}

/**
 * Hands the session fds to a detached process that only keeps them open, so
 * this command can exit (upstream's daemonize_and_wait()).
 */
function holdInBackground(held: Session[]): number {
  const fds = held.map((s) => s.fd);
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 2 ** 30)'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', ...fds],
  });
  child.unref();
  // The child has its own references now; ours can go.
  for (const s of held) s.close();
  return child.pid ?? -1;
}
