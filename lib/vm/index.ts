/**
 * Running code on a real LUO kernel: build (and cache) one from Debian's
 * kernel source, boot it under QEMU, and carry a workload across a real
 * kexec live update.
 * @packageDocumentation
 */
export { ensureKernel, cacheRoot, CONFIG_FRAGMENT, type BuiltKernel, type KernelOptions } from './kernel';
export { ensureHostPackages, HOST_PACKAGES } from './host-packages';
export { buildKernelSelftests, type KernelSelftests } from './kernel-selftests';
export { runVm, nextStageCmdline, STAGE_PARAM, type VmRunOptions, type VmRunResult } from './qemu';
export { vmStage, liveUpdateToNextStage } from './stage';
export { stderrReporter, duration, type Reporter } from './progress';
