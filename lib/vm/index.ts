/**
 * Running code on a real LUO kernel: build (and cache) one from Debian's
 * kernel source, boot it under QEMU, and carry a workload across a real
 * kexec live update.
 * @packageDocumentation
 */
export { ensureKernel, cacheRoot, CONFIG_FRAGMENT, type BuiltKernel, type KernelOptions } from './kernel';
export { ensureHostPackages, HOST_PACKAGES } from './host-packages';
export { buildKernelSelftests, type KernelSelftests } from './kernel-selftests';
export { runVm, nextStageCmdline, defaultCpus, STAGE_PARAM, type VmRunOptions, type VmRunResult } from './qemu';
export { debianMirror, readAptSources, parseAptSources, hostCodename, type AptSource, type AptSourcesFile } from './apt-mirror';
export { ensureRootfs, ROOTFS_PACKAGES, type Rootfs, type RootfsOptions } from './rootfs';
export { makeImage, type ImageFile } from './disk-image';
export { installUnits } from './systemd-units';
export { runSystemdVm, systemdCmdline, baseFiles, onHost, GUEST_HOST_ROOT, GUEST_OUT, GUEST_NODE, type SystemdVmOptions, type SystemdVmResult } from './systemd-vm';
export { vmStage, liveUpdateToNextStage } from './stage';
export { stderrReporter, duration, type Reporter } from './progress';
