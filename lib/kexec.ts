import * as fs from 'node:fs';
import { type Binding, defaultBinding } from './binding';
import { callAsync, callSync, invalidArgType } from './errors';
import { validateString } from './validate';

export interface KexecLoadOptions {
  /** Path of the kernel image (bzImage) to boot. */
  kernel: string;
  /** Path of an initramfs; none by default. */
  initrd?: string;
  /**
   * The new kernel's command line; the running kernel's (/proc/cmdline) by
   * default, so `liveupdate=on` and the rest carry over.
   */
  cmdline?: string;
}

/** The live-update trigger: load the next kernel, then reboot into it. */
export interface Kexec {
  /** Loads the next kernel with kexec_file_load(2). Needs CAP_SYS_BOOT. */
  loadSync(options: KexecLoadOptions): void;
  /** Promise form of {@link Kexec.loadSync} (the kernel reads and verifies the image). */
  load(options: KexecLoadOptions): Promise<void>;
  /** Unloads a loaded kernel (KEXEC_FILE_UNLOAD). */
  unloadSync(): void;
  /** Promise form of {@link Kexec.unloadSync}. */
  unload(): Promise<void>;
  /**
   * Reboots into the loaded kernel (reboot(LINUX_REBOOT_CMD_KEXEC)) without
   * shutting anything down: the live update. Keep outgoing sessions open
   * across this call. Returns only by throwing.
   */
  rebootSync(): never;
  /** Promise form of {@link Kexec.rebootSync}: settles only by rejecting. */
  reboot(): Promise<never>;
}

/**
 * Builds the kexec API over a given system-call layer (tests pass a fake).
 * @internal
 */
export function createKexec(getBinding: () => Binding = defaultBinding, readCmdline = currentCmdline): Kexec {
  function prepare(options: KexecLoadOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
    const kernel = validateString(options.kernel, 'options.kernel');
    const initrd = options.initrd === undefined ? undefined : validateString(options.initrd, 'options.initrd');
    const cmdline = options.cmdline === undefined ? readCmdline() : validateString(options.cmdline, 'options.cmdline');
    const binding = getBinding();
    // Opening is part of the load: its failure names the operation too.
    const open = (file: string) => callSync('KEXEC_FILE_LOAD', { path: file }, () => fs.openSync(file, 'r'));
    const kernelFd = open(kernel);
    let initrdFd = -1;
    try {
      if (initrd !== undefined) initrdFd = open(initrd);
    } catch (err) {
      fs.closeSync(kernelFd);
      throw err;
    }
    const flags = initrd === undefined ? binding.constants.KEXEC_FILE_NO_INITRAMFS : 0;
    const done = () => {
      fs.closeSync(kernelFd);
      if (initrdFd >= 0) fs.closeSync(initrdFd);
    };
    return { binding, kernelFd, initrdFd, cmdline, flags, done, context: { path: kernel } };
  }

  return {
    loadSync(options) {
      const p = prepare(options);
      try {
        callSync('KEXEC_FILE_LOAD', p.context, () => p.binding.kexecFileLoadSync(p.kernelFd, p.initrdFd, p.cmdline, p.flags));
      } finally {
        p.done();
      }
    },
    async load(options) {
      const p = prepare(options);
      try {
        await callAsync('KEXEC_FILE_LOAD', p.context, p.binding, () => p.binding.kexecFileLoad(p.kernelFd, p.initrdFd, p.cmdline, p.flags));
      } finally {
        p.done();
      }
    },
    unloadSync() {
      const binding = getBinding();
      callSync('KEXEC_FILE_UNLOAD', {}, () => binding.kexecFileLoadSync(-1, -1, '', binding.constants.KEXEC_FILE_UNLOAD));
    },
    async unload() {
      const binding = getBinding();
      await callAsync('KEXEC_FILE_UNLOAD', {}, binding, () => binding.kexecFileLoad(-1, -1, '', binding.constants.KEXEC_FILE_UNLOAD));
    },
    rebootSync(): never {
      const binding = getBinding();
      callSync('REBOOT_KEXEC', {}, () => binding.rebootKexecSync());
      throw new Error('reboot(LINUX_REBOOT_CMD_KEXEC) returned without an error');
    },
    async reboot(): Promise<never> {
      const binding = getBinding();
      await callAsync('REBOOT_KEXEC', {}, binding, () => binding.rebootKexec());
      throw new Error('reboot(LINUX_REBOOT_CMD_KEXEC) returned without an error');
    },
  };
}

function currentCmdline(): string {
  return fs.readFileSync('/proc/cmdline', 'utf8').trim();
}

/** The live-update trigger over the compiled addon. */
export const kexec: Kexec = createKexec();
