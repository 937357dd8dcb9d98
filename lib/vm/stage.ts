// Helpers for a workload running inside `runVm`: which stage it is in,
// and the live update into the next stage.
import { type Kexec, kexec as realKexec } from '../kexec';
import { nextStageCmdline } from './qemu';

/** The stage the guest workload is in: 1 on first boot, 2 after the first live update, … */
export function vmStage(env: NodeJS.ProcessEnv = process.env): number {
  const stage = Number(env.LIVEUPDATE_VM_STAGE);
  if (!Number.isInteger(stage) || stage < 1) {
    throw new Error('LIVEUPDATE_VM_STAGE is not set: this helper works inside a liveupdate VM (runVm)');
  }
  return stage;
}

/**
 * Live-updates the VM into the next stage: loads the same kernel with the
 * stage marker advanced and reboots into it. Keep the sessions to carry
 * open across this call. Returns only by throwing.
 */
export function liveUpdateToNextStage(options: { kexec?: Kexec; env?: NodeJS.ProcessEnv } = {}): never {
  const env = options.env ?? process.env;
  const kernel = env.LIVEUPDATE_VM_KERNEL;
  if (!kernel) throw new Error('LIVEUPDATE_VM_KERNEL is not set: this helper works inside a liveupdate VM (runVm)');
  const k = options.kexec ?? realKexec;
  k.loadSync({ kernel, cmdline: nextStageCmdline(vmStage(env) + 1) });
  return k.rebootSync();
}
