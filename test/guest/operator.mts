// Guest workload: an operator's live update, driven only through the
// `liveupdate` command as on a real host. Stage 1: `selftest` (which leaves a
// holder process behind and exits), `status`, `sessions`, `kexec load`, `kexec
// exec --yes`. Stage 2: `selftest --stage 2`. Each command's exit status and
// output go to $LIVEUPDATE_VM_OUT/operator.jsonl for test/vm/operator.test.ts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nextStageCmdline, vmStage } from 'liveupdate/vm';

export interface OperatorStep {
  stage: number;
  args: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

const bin = new URL('../../bin/liveupdate.js', import.meta.url).pathname;
const out = path.join(process.env.LIVEUPDATE_VM_OUT!, 'operator.jsonl');
// A real host has no VM stage variable: the command must not see it.
const env = { ...process.env };
delete env.LIVEUPDATE_VM_STAGE;

function liveupdate(...args: string[]): OperatorStep {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 300_000 });
  const step = { stage: vmStage(), args, status: r.status, stdout: r.stdout, stderr: r.stderr };
  fs.appendFileSync(out, `${JSON.stringify(step)}\n`);
  console.log(`$ liveupdate ${args.join(' ')}  -> exit ${r.status}`);
  return step;
}

if (vmStage() === 1) {
  liveupdate('selftest', '--stage', '1');
  liveupdate('sessions', '--json');
  liveupdate('kexec', 'exec', '--yes'); // nothing loaded yet: refused
  liveupdate('kexec', 'load', '--kernel', process.env.LIVEUPDATE_VM_KERNEL!, '--append', nextStageCmdline(2));
  liveupdate('status', '--json');
  liveupdate('kexec', 'exec', '--yes'); // returns only if the reboot failed
} else {
  liveupdate('selftest', '--stage', '2', '--tap');
  liveupdate('sessions', '--json');
}
