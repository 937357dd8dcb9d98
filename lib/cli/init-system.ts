import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, EXIT, type Io } from './io';

/** How `liveupdate kexec exec` triggers the live update on this machine. */
export interface KexecTrigger {
  /** `systemctl`: `systemctl kexec`, an orderly shutdown. `reboot`: reboot(LINUX_REBOOT_CMD_KEXEC) at once. */
  via: 'systemctl' | 'reboot';
  /** PID 1's command name. */
  init: string;
  /** One line for an operator: what this path does to running services. */
  why: string;
}

/**
 * Under systemd the raw reboot is wrong: nothing is unmounted or flushed,
 * and services never get to stop. `systemctl kexec` stops them in order and
 * keeps what sits in their fd stores (FileDescriptorStorePreserve=), which
 * is how sessions survive on a systemd host. Elsewhere (a bare init, our
 * test VM) the raw reboot is the live update.
 */
export function kexecTrigger(io: Pick<Io, 'procRoot'>): KexecTrigger {
  let init = 'unknown';
  try {
    init = fs.readFileSync(path.join(io.procRoot, '1/comm'), 'utf8').trim() || init;
  } catch {
    // not readable: treat it as not systemd
  }
  if (init === 'systemd') {
    return {
      via: 'systemctl',
      init,
      why: 'systemd is PID 1: `systemctl kexec` stops services in order, unmounts and flushes; sessions survive only in service fd stores',
    };
  }
  return {
    via: 'reboot',
    init,
    why: `PID 1 is ${init}, not systemd: reboot(LINUX_REBOOT_CMD_KEXEC) at once; nothing is stopped, unmounted or flushed`,
  };
}

/** Runs systemctl with `args`, its output on ours; returns its exit status. */
export type Systemctl = (args: string[]) => number | null;

export const realSystemctl: Systemctl = (args) => {
  const r = spawnSync('systemctl', args, { stdio: 'inherit' });
  if (r.error) throw new CliError(`could not run systemctl: ${r.error.message}`, EXIT.unavailable);
  return r.status;
};
