// live-update.service's program, run once the other services are up. While
// this boot is fewer than $LIVEUPDATE_VM_KEXECS live updates from the fresh
// one (KExecCount), it live-updates the way an operator would:
// `liveupdate kexec load` of the same kernel, then `liveupdate kexec exec
// --yes`, which with systemd as PID 1 runs `systemctl kexec`. Afterwards:
// report and power off.
import { spawnSync } from 'node:child_process';
import { type DriverRecord, kexecCount, mark, record } from './record.mjs';

const kexecs = Number(process.env.LIVEUPDATE_VM_KEXECS ?? 1);
const commands: DriverRecord['commands'] = [];
function run(...argv: string[]) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 300_000 });
  const c = { argv, status: r.status, stdout: r.stdout, stderr: r.stderr || (r.error ? String(r.error) : '') };
  commands.push(c);
  return c;
}
const report = (ok: boolean, error?: string) => record({ unit: 'live-update.service', boot: count + 1, ok, error, kexecCountProperty: property, kexecCount: count, commands });
function powerOff() {
  mark('powering off');
  run('systemctl', '--no-block', 'poweroff');
}

let property = '';
let count = NaN;
try {
  ({ property, count } = kexecCount());
} catch (err) {
  report(false, String(err));
}
if (count < kexecs) {
  const load = run('liveupdate', 'kexec', 'load', '--kernel', process.env.LIVEUPDATE_VM_KERNEL!, '--reuse-cmdline');
  report(load.status === 0);
  if (load.status === 0) {
    mark('systemctl kexec');
    const exec = run('liveupdate', 'kexec', 'exec', '--yes');
    // systemctl returns once the job is queued; the kexec then stops this service.
    if (exec.status === 0) await new Promise(() => setInterval(() => {}, 1 << 30));
    report(false, `the live update did not start (exit status ${exec.status})`);
  }
  powerOff();
} else {
  report(count === kexecs);
  powerOff();
}
