// ESM entry of `liveupdate/vm`: re-exports the CommonJS build.
import cjs from '../dist/vm/index.js';

export const {
  ensureKernel,
  cacheRoot,
  CONFIG_FRAGMENT,
  ensureHostPackages,
  HOST_PACKAGES,
  runVm,
  nextStageCmdline,
  STAGE_PARAM,
  vmStage,
  liveUpdateToNextStage,
  stderrReporter,
  duration,
} = cjs;
