// live-update.service's program, run once vmm.service is ready. While this
// boot is fewer than $LIVEUPDATE_VM_KEXECS (1 by default) live updates from
// the fresh boot (KExecCount): `liveupdate kexec load` of the same kernel
// with the running command line, then `systemctl --no-block kexec` (the
// CLI's own `kexec exec` reboots without stopping services; it is to go
// through systemctl later). Afterwards: report and power off.
import { spawnSync } from 'node:child_process';
import { type DriverRecord, kexecCount, mark, record } from './record.mjs';

const cli = new URL('../../bin/liveupdate.js', import.meta.url).pathname;
const kexecs = Number(process.env.LIVEUPDATE_VM_KEXECS ?? 1);
const commands: DriverRecord['commands'] = [];
function run(...argv: string[]) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 300_000 });
  const c = { argv, status: r.status, stdout: r.stdout, stderr: r.stderr || (r.error ? String(r.error) : '') };
  commands.push(c);
  return c;
}

let property = '';
let count = NaN;
try {
  ({ property, count } = kexecCount());
} catch (err) {
  record({ unit: 'live-update.service', ok: false, error: String(err), kexecCountProperty: property, kexecCount: count, commands });
}
if (count < kexecs) {
  const load = run(process.execPath, cli, 'kexec', 'load', '--kernel', process.env.LIVEUPDATE_VM_KERNEL!);
  const ok = load.status === 0;
  record({ unit: 'live-update.service', ok, kexecCountProperty: property, kexecCount: count, commands });
  if (ok) {
    mark('systemctl kexec');
    run('systemctl', '--no-block', 'kexec');
  }
  if (!ok || commands.at(-1)!.status !== 0) {
    record({ unit: 'live-update.service', ok: false, error: 'the live update did not start', kexecCountProperty: property, kexecCount: count, commands });
    mark('powering off');
    run('systemctl', '--no-block', 'poweroff');
  }
} else {
  record({ unit: 'live-update.service', ok: count === kexecs, kexecCountProperty: property, kexecCount: count, commands });
  mark('powering off');
  run('systemctl', '--no-block', 'poweroff');
}
