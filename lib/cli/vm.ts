import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheRoot, ensureKernel } from '../vm/kernel';
import { ensureHostPackages } from '../vm/host-packages';
import { stderrReporter } from '../vm/progress';
import { runVm } from '../vm/qemu';
import { CliError, EXIT, type Io, parse, readableFile, unknownCommand } from './io';

export const vmHelp = `Usage:
  liveupdate vm run SCRIPT [ARG...] [--kernel FILE] [--timeout SECONDS] [--verbose]
  liveupdate vm selftest [--tap] [--only device|kexec] [--kernel FILE]

Boots a kernel with the Live Update Orchestrator under QEMU and runs a
program of yours across a real kexec live update, streaming its output: test
preservation code on any Linux machine, no LUO host needed.

  run       runs \`node SCRIPT ARG...\` as the VM's workload, with this machine's
            root filesystem shared read-only (your files are where they are
            here; scratch space is $TMPDIR). The script reads its stage from
            LIVEUPDATE_VM_STAGE (1, then 2, …) and triggers the live update
            itself while holding its sessions:
              import { liveUpdateToNextStage } from 'liveupdate/vm';
  selftest  runs \`liveupdate selftest\` that way (--tap and --only are passed on).

The first use builds the kernel from Debian's newest linux-source-7.x (about
9 minutes on 2 cores, progress shown) and caches it in ${cacheRoot()}.
As root, missing Debian packages (qemu-system-x86, flex, bison, bc,
libelf-dev, libssl-dev, …) are installed with apt-get.

Options:
  --kernel FILE      boot this bzImage instead (also $LIVEUPDATE_KERNEL)
  --timeout SECONDS  give up after this long (default 900)
  --verbose          show kernel messages too
  -h, --help         show this help

Exit status: the workload's in its last stage; 124 on timeout; 3 when the
VM could not be set up.
`;

const MARKER = /^liveupdate-vm: workload exited with status (\d+) in stage (\d+)$/;

export async function vmCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub) {
    io.err(vmHelp);
    return EXIT.usage;
  }
  if (sub === '-h' || sub === '--help') {
    io.out(vmHelp);
    return EXIT.ok;
  }
  if (sub !== 'run' && sub !== 'selftest') throw unknownCommand('vm command', sub, ['run', 'selftest'], 'liveupdate vm');
  const { values, positionals } = parse(
    rest,
    {
      kernel: { type: 'string' },
      timeout: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      // Passed on to `liveupdate selftest`.
      ...(sub === 'selftest' ? { tap: { type: 'boolean' }, only: { type: 'string' } } : {}),
    } as const,
    sub === 'run',
  );
  if (values.help) {
    io.out(vmHelp);
    return EXIT.ok;
  }
  let argv: string[];
  if (sub === 'run') {
    const [script, ...scriptArgs] = positionals;
    if (!script) throw new CliError('vm run needs a SCRIPT', EXIT.usage);
    const file = readableFile(path.resolve(script), 'script');
    argv = [process.execPath, file, ...scriptArgs];
  } else {
    const v = values as { tap?: boolean; only?: string };
    argv = [process.execPath, path.join(__dirname, 'main.js'), 'selftest', ...(v.tap ? ['--tap'] : []), ...(v.only ? ['--only', v.only] : [])];
  }
  const timeout = values.timeout === undefined ? 900 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CliError('--timeout takes a number of seconds', EXIT.usage);

  if (values.kernel !== undefined) readableFile(values.kernel, '--kernel');
  const report = stderrReporter('[liveupdate vm]');
  let kernel: string;
  try {
    ensureHostPackages(report);
    kernel = values.kernel ?? io.env.LIVEUPDATE_KERNEL ?? (await ensureKernel({ report })).bzImage;
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.unavailable);
  }
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-vm-'));
  let status: number | undefined;
  const result = await runVm({
    kernel,
    argv,
    cwd: process.cwd(),
    outDir,
    workDir: path.join(cacheRoot(), 'vm'),
    timeoutMs: timeout * 1000,
    onConsole: (line) => {
      const m = MARKER.exec(line);
      if (m) status = Number(m[1]);
      const kernelMessage = /^\[\s*\d+\.\d+\]/.test(line);
      if (values.verbose || !kernelMessage) io.out(`${line}\n`);
    },
  });
  fs.rmSync(outDir, { recursive: true, force: true });
  if (result.timedOut) {
    io.err(`liveupdate: the VM did not finish within ${timeout} s\n`);
    return 124;
  }
  if (status === undefined) {
    io.err('liveupdate: the workload never finished (see the output above; --verbose shows kernel messages)\n');
    return EXIT.failed;
  }
  return status;
}
