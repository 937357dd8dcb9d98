// Guest entry point (run by the VM's init): runs the current stage's cases,
// then, at the end of stage 1, live-updates into stage 2 while this process
// still holds the sessions the stage-2 cases retrieve.
import { liveUpdateToNextStage, vmStage } from 'liveupdate/vm';
import { type GuestContext, suite } from './cases.mjs';
import { runStage } from './harness.mjs';

const stage = vmStage();
const context: GuestContext = { kept: [] };
await runStage(suite.stages.get(stage) ?? [], stage, process.env.LIVEUPDATE_VM_OUT!, context);
if (stage === 1) {
  console.log(`liveupdate-vm: kexec into stage 2 holding ${context.kept.length} sessions`);
  liveUpdateToNextStage();
}
