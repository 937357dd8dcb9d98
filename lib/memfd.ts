import * as fs from 'node:fs';
import type { Binding } from './binding';
import { defaultBinding } from './binding';
import { callAsync, callSync, invalidArgType, invalidArgValue, outOfRange } from './errors';
import { OwnedFd, type OwnedFdOptions, adoptFd, adoptableFd } from './owned-fd';
import type { FdLike } from './validate';
import { validateOptions, validateString } from './validate';

/** A memfd seal, named after its F_SEAL_* flag. */
export type SealName = 'seal' | 'shrink' | 'grow' | 'write' | 'future-write' | 'exec';

const SEAL_FLAGS: Record<SealName, keyof Binding['constants']> = {
  seal: 'F_SEAL_SEAL',
  shrink: 'F_SEAL_SHRINK',
  grow: 'F_SEAL_GROW',
  write: 'F_SEAL_WRITE',
  'future-write': 'F_SEAL_FUTURE_WRITE',
  exec: 'F_SEAL_EXEC',
};
const SEAL_NAMES = Object.keys(SEAL_FLAGS) as SealName[];

export interface MemfdCreateOptions extends OwnedFdOptions {
  /** Initial size in bytes (ftruncate); 0 by default. */
  size?: number | bigint;
  /** Allow seals to be added later (MFD_ALLOW_SEALING); true by default. */
  allowSealing?: boolean;
}

/**
 * An anonymous shared-memory file (memfd_create(2)): the kind of file LUO
 * preserves today. Read and write it with `fs` on `memfd.fd`; its contents,
 * size, file position and seals survive a live update.
 */
export class Memfd extends OwnedFd {
  /** Creates a memfd (close-on-exec, sealable unless `allowSealing: false`). */
  static createSync(name: string, options: MemfdCreateOptions = {}): Memfd {
    const { flags, size, binding } = memfdArgs(name, options);
    const fd = callSync('MEMFD_CREATE', {}, () => binding.memfdCreateSync(name, flags));
    return Memfd.#sized(fd, size, binding, name);
  }

  /** Promise form of {@link Memfd.createSync}. */
  static async create(name: string, options: MemfdCreateOptions = {}): Promise<Memfd> {
    const { flags, size, binding } = memfdArgs(name, options);
    const fd = await callAsync('MEMFD_CREATE', {}, () => binding.memfdCreate(name, flags));
    return Memfd.#sized(fd, size, binding, name);
  }

  /**
   * Adopts a memfd, e.g. one retrieved from a session. An OwnedFd is
   * consumed (detached); a number becomes owned by the new Memfd.
   * Throws ERR_INVALID_ARG_VALUE, owning nothing, if the fd is not a memfd;
   * ERR_INVALID_ARG_TYPE for other objects with an `fd` (a FileHandle still
   * owns its fd and would close it behind the Memfd's back).
   */
  static from(file: FdLike, options: OwnedFdOptions = {}): Memfd {
    const fd = adoptableFd(file);
    const binding = validateOptions(options).binding ?? (file instanceof OwnedFd ? (file as Memfd).binding : defaultBinding());
    if (!isMemfd(fd, binding)) throw invalidArgValue('file', file, `is not a memfd (fd ${fd})`);
    adoptFd(file as number | OwnedFd);
    return new Memfd(fd, { binding }, { label: memfdLabel(fd, nameOf(fd)) });
  }

  /** Adds seals (F_ADD_SEALS). Seals can only be added, never removed. */
  addSealsSync(seals: readonly SealName[]): void {
    const bits = sealBits(seals, this.binding);
    const fd = this.fd;
    callSync('F_ADD_SEALS', { fd }, () => this.binding.addSealsSync(fd, bits));
  }

  /** Promise form of {@link Memfd.addSealsSync}. */
  addSeals(seals: readonly SealName[]): Promise<void> {
    const bits = sealBits(seals, this.binding);
    return this.withFd((fd) => callAsync('F_ADD_SEALS', { fd }, () => this.binding.addSeals(fd, bits)));
  }

  /** The seals in force (F_GET_SEALS), in a fixed order. */
  getSealsSync(): SealName[] {
    const fd = this.fd;
    return sealNames(callSync('F_GET_SEALS', { fd }, () => this.binding.getSealsSync(fd)), this.binding);
  }

  /** Promise form of {@link Memfd.getSealsSync}. */
  async getSeals(): Promise<SealName[]> {
    const bits = await this.withFd((fd) => callAsync('F_GET_SEALS', { fd }, () => this.binding.getSeals(fd)));
    return sealNames(bits, this.binding);
  }

  static #sized(fd: number, size: number, binding: Binding, name: string): Memfd {
    const memfd = new Memfd(fd, { binding }, { label: memfdLabel(fd, name) });
    if (size > 0) {
      try {
        fs.ftruncateSync(fd, size);
      } catch (err) {
        memfd.close();
        throw err;
      }
    }
    return memfd;
  }
}

function memfdArgs(name: string, options: MemfdCreateOptions) {
  validateString(name, 'name');
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const { size = 0, allowSealing = true } = options;
  if (typeof size !== 'number' && typeof size !== 'bigint') throw invalidArgType('options.size', 'of type number or bigint', size);
  if (typeof size === 'number' ? !Number.isSafeInteger(size) || size < 0 : size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw outOfRange('options.size', `an integer >= 0 and <= ${Number.MAX_SAFE_INTEGER}`, size);
  }
  if (typeof allowSealing !== 'boolean') throw invalidArgType('options.allowSealing', 'of type boolean', allowSealing);
  const binding = options.binding ?? defaultBinding();
  return { flags: allowSealing ? binding.constants.MFD_ALLOW_SEALING : 0, size: Number(size), binding };
}

function sealBits(seals: readonly SealName[], binding: Binding): number {
  if (!Array.isArray(seals)) throw invalidArgType('seals', 'an array of seal names', seals);
  let bits = 0;
  for (const seal of seals as readonly SealName[]) {
    if (!SEAL_NAMES.includes(seal)) {
      throw invalidArgValue('seals', seal, `must be one of ${SEAL_NAMES.map((s) => `'${s}'`).join(', ')}`);
    }
    bits |= binding.constants[SEAL_FLAGS[seal]];
  }
  return bits;
}

function sealNames(bits: number, binding: Binding): SealName[] {
  return SEAL_NAMES.filter((name) => (bits & binding.constants[SEAL_FLAGS[name]]) !== 0);
}

// Only shmem files (memfds, and tmpfs files) answer F_GET_SEALS. The name
// cannot tell: a memfd retrieved after a live update is `/ (deleted)`, not
// `/memfd:NAME`, because the kernel recreates it without a name.
function isMemfd(fd: number, binding: Binding): boolean {
  try {
    binding.getSealsSync(fd);
    return true;
  } catch {
    return false;
  }
}

// Errors and the unclosed-memfd warning name the memfd as its creator did.
const memfdLabel = (fd: number, name: string | undefined) => (name === undefined ? `memfd ${fd}` : `memfd ${JSON.stringify(name)}`);

/** The name a memfd was created with, from its /proc link ("/memfd:NAME (deleted)"). */
function nameOf(fd: number): string | undefined {
  try {
    return /^\/memfd:(.*?)(?: \(deleted\))?$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1];
  } catch {
    return undefined;
  }
}
